// The official centrifuge npm package (the SDK most portals use) against
// the real gateway, with no option the gateway would need: Node 20 has no
// global WebSocket, so the ws package is passed as the SDK documents.

import { test, before, after, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Centrifuge } from 'centrifuge';
import WebSocket from 'ws';
import { Gateway, buildGateway, mintToken, waitFor, REPO } from './gateway.mjs';

let gw;
const clients = [];

before(async () => {
  // No -dev: no simulator traffic, only what the tests publish.
  gw = new Gateway({ bin: await buildGateway(), dev: false });
  await gw.start();
});

after(async () => {
  await gw?.close();
});

afterEach(() => {
  for (const c of clients.splice(0)) c.disconnect();
});

const alice = (opts) => mintToken({
  sub: 'alice', tenant: 'acme', roles: ['member'], info: { name: 'Alice' },
  allow: { publish: ['tenant:acme:collaboration'] },
}, opts);
const anna = () => mintToken({ sub: 'anna', tenant: 'acme', roles: ['member'], info: { name: 'Anna' } });

function newClient(token, opts = {}) {
  const c = new Centrifuge(gw.wsURL, { token, websocket: WebSocket, ...opts });
  clients.push(c);
  return c;
}

/** next resolves with the next event of that name, or fails after timeout. */
function next(emitter, event, timeout = 8000) {
  return new Promise((ok, fail) => {
    const timer = setTimeout(() => { emitter.off(event, on); fail(new Error(`no ${event} event within ${timeout} ms`)); }, timeout);
    function on(ctx) { clearTimeout(timer); emitter.off(event, on); ok(ctx); }
    emitter.on(event, on);
  });
}

let seq = 0;
/** fresh gives a channel nobody else uses in this run. */
const fresh = (resource = 'sdk') => `tenant:acme:${resource}${Date.now().toString(36)}${seq++}`;

/** collect records a subscription's publications. */
function collect(sub) {
  const got = [];
  sub.on('publication', (ctx) => got.push(ctx));
  return got;
}

async function subscribed(c, channel, opts) {
  const sub = c.newSubscription(channel, opts);
  const ready = next(sub, 'subscribed');
  sub.subscribe();
  if (c.state !== 'connected') c.connect();
  return { sub, ctx: await ready };
}

test('connects with a JWT and gets a client id over WebSocket', async () => {
  const c = newClient(alice());
  const connected = next(c, 'connected');
  c.connect();
  const ctx = await connected;
  assert.equal(ctx.transport, 'websocket');
  assert.match(ctx.client, /.+/);
  assert.equal(c.state, 'connected');
});

test('subscribes (recoverable by default) and receives a publication with its offset', async () => {
  const c = newClient(alice());
  const channel = fresh();
  const { sub, ctx } = await subscribed(c, channel);
  assert.equal(ctx.recoverable, true, 'tenant channels are recoverable without any SDK option');
  assert.ok(ctx.streamPosition && typeof ctx.streamPosition.epoch === 'string' && ctx.streamPosition.epoch !== '');
  const pub = next(sub, 'publication');
  const { offset } = await gw.publish(channel, { hello: 'acme' });
  const got = await pub;
  assert.deepEqual(got.data, { hello: 'acme' });
  assert.equal(got.offset, offset);
  assert.equal(got.channel, channel);
});

test('history: oldest first, newest first, since a position, position only', async () => {
  const c = newClient(alice());
  const channel = fresh();
  const offsets = [];
  for (let n = 1; n <= 3; n++) offsets.push((await gw.publish(channel, { n })).offset);
  const { sub } = await subscribed(c, channel);

  const all = await sub.history({ limit: 10 });
  assert.deepEqual(all.publications.map((p) => p.data.n), [1, 2, 3]);
  assert.deepEqual(all.publications.map((p) => p.offset), offsets);
  assert.equal(all.offset, offsets[2]);

  const newest = await sub.history({ limit: 2, reverse: true });
  assert.deepEqual(newest.publications.map((p) => p.data.n), [3, 2]);

  const after1 = await sub.history({ limit: 10, since: { offset: offsets[0], epoch: all.epoch } });
  assert.deepEqual(after1.publications.map((p) => p.data.n), [2, 3]);

  const pos = await sub.history({ limit: 0 });
  assert.equal(pos.publications.length, 0);
  assert.equal(pos.offset, offsets[2]);
  assert.equal(pos.epoch, all.epoch);
});

test('client-side publish where the token grants it (with the publisher\'s info), 103 where it does not', async () => {
  const c = newClient(alice());
  const channel = 'tenant:acme:collaboration';
  const { sub } = await subscribed(c, channel);
  const pub = next(sub, 'publication');
  await c.publish(channel, { kind: 'field', field: 'plan', value: 'pro' });
  const got = await pub;
  assert.deepEqual(got.data, { kind: 'field', field: 'plan', value: 'pro' });
  assert.equal(got.info.user, 'alice');
  assert.equal(got.info.connInfo.name, 'Alice');

  await assert.rejects(c.publish('tenant:acme:deployments', { forged: true }), (e) => e.code === 103);
});

test('presence, presence stats and join/leave on tenant:acme:presence', async () => {
  const channel = 'tenant:acme:presence';
  const a = newClient(alice());
  const { sub } = await subscribed(a, channel);
  // The gateway may answer presence a moment before its own view has the
  // subscriber (reported to the lead): poll briefly instead of asserting on
  // the first reply.
  const me = await waitFor(async () => Object.values((await sub.presence()).clients).find((i) => i.user === 'alice'),
    { timeout: 3000, what: 'alice in her own presence reply' });
  assert.equal(me.connInfo.name, 'Alice');

  const joined = next(sub, 'join');
  const b = newClient(anna());
  await subscribed(b, channel);
  const join = await joined;
  assert.equal(join.info.user, 'anna');
  assert.equal(join.info.connInfo.name, 'Anna');

  const both = await sub.presence();
  assert.deepEqual(Object.values(both.clients).map((i) => i.user).sort(), ['alice', 'anna']);
  const stats = await sub.presenceStats();
  assert.equal(stats.numClients, 2);
  assert.equal(stats.numUsers, 2);

  const left = next(sub, 'leave');
  b.disconnect();
  assert.equal((await left).info.user, 'anna');
});

test('recovery: what was published while disconnected arrives on reconnect, in order, once', async () => {
  const c = newClient(alice());
  const channel = fresh();
  const { sub } = await subscribed(c, channel);
  const got = collect(sub);
  await gw.publish(channel, { n: 1 });
  await waitFor(() => got.length === 1, { what: 'the first publication' });

  c.disconnect();
  for (let n = 2; n <= 4; n++) await gw.publish(channel, { n });
  const resubscribed = next(sub, 'subscribed');
  c.connect();
  const ctx = await resubscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true);
  await waitFor(() => got.length === 4, { what: 'the recovered publications' });
  await gw.publish(channel, { n: 5 });
  await waitFor(() => got.length === 5, { what: 'the next live publication' });
  assert.deepEqual(got.map((p) => p.data.n), [1, 2, 3, 4, 5]);
});

test('recovery across a gateway restart: 3001 on SIGTERM, then nothing lost', async () => {
  const c = newClient(alice());
  const channel = fresh();
  const { sub } = await subscribed(c, channel);
  const got = collect(sub);
  await gw.publish(channel, { n: 1 });
  await waitFor(() => got.length === 1, { what: 'the first publication' });

  const codes = [];
  c.on('connecting', (ctx) => codes.push(ctx.code));
  await gw.stop();
  await waitFor(() => codes.includes(3001), { what: 'a connecting event with code 3001 (shutdown)' });
  // Hold the client back while the gateway is down so that the next
  // publications are certainly published while it is disconnected.
  c.disconnect();
  await gw.start();
  await gw.publish(channel, { n: 2 });
  await gw.publish(channel, { n: 3 });
  const resubscribed = next(sub, 'subscribed');
  c.connect();
  const ctx = await resubscribed;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, true, 'same stream, same epoch after a restart: recovered');
  await waitFor(() => got.length === 3, { what: 'the publications made during the restart' });
  assert.deepEqual(got.map((p) => p.data.n), [1, 2, 3]);
});

test('the SDK reconnects by itself after a gateway restart and goes on live', async () => {
  const c = newClient(alice(), { minReconnectDelay: 200, maxReconnectDelay: 1000 });
  const channel = fresh();
  const { sub } = await subscribed(c, channel);
  const got = collect(sub);
  const connects = [];
  c.on('connected', (ctx) => connects.push(ctx.client));
  await gw.restart();
  await waitFor(() => connects.length === 1, { timeout: 15000, what: 'the SDK to reconnect on its own' });
  await waitFor(() => sub.state === 'subscribed', { what: 'the subscription to be back' });
  await gw.publish(channel, { n: 1 });
  await waitFor(() => got.length === 1, { what: 'a live publication after the restart' });
});

test('an unknown epoch cannot be recovered: recovered false, no publications', async () => {
  const c = newClient(alice());
  const channel = fresh();
  await gw.publish(channel, { n: 1 });
  const sub = c.newSubscription(channel, { since: { offset: 1, epoch: 'not-this-stream' } });
  const got = collect(sub);
  const ready = next(sub, 'subscribed');
  sub.subscribe();
  c.connect();
  const ctx = await ready;
  assert.equal(ctx.wasRecovering, true);
  assert.equal(ctx.recovered, false);
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(got.length, 0);
});

test('permission errors reach the SDK with Centrifugo\'s codes', async () => {
  const c = newClient(alice());
  c.connect();
  await next(c, 'connected');
  const refused = async (channel) => {
    const sub = c.newSubscription(channel);
    const un = next(sub, 'unsubscribed');
    sub.subscribe();
    const ctx = await un;
    c.removeSubscription(sub);
    return ctx.code;
  };
  assert.equal(await refused('tenant:globex:deployments'), 103, 'another tenant: permission denied');
  assert.equal(await refused('admin:billing:alerts'), 103, 'admin channel for a member: permission denied');
  assert.equal(await refused('nosuchns:x'), 102, 'unknown namespace: unknown channel');
  assert.equal(await refused('tenant:acme:bad$name'), 107, 'invalid channel: bad request');
  assert.equal(c.state, 'connected', 'refusals do not cost the connection');
});

test('an expired token is replaced through getToken (error 109)', async () => {
  let calls = 0;
  const c = newClient(alice({ ttl: -120 }), {
    getToken: async () => { calls++; return alice(); },
  });
  const connected = next(c, 'connected');
  c.connect();
  await connected;
  assert.equal(calls, 1);
});

test('a token with a bad signature is refused: disconnected with 3500, no reconnect', async () => {
  const forged = mintToken({ sub: 'mallory', tenant: 'acme' }, { secret: 'not-the-gateway-secret-0123456789abcdef' });
  const c = newClient(forged);
  const connecting = [];
  c.on('connecting', (ctx) => connecting.push(ctx.code));
  const disconnected = next(c, 'disconnected');
  c.connect();
  const ctx = await disconnected;
  assert.equal(ctx.code, 3500);
  assert.match(ctx.reason, /invalid token/);
  await new Promise((r) => setTimeout(r, 1000));
  assert.equal(c.state, 'disconnected');
  assert.deepEqual(connecting, [0], 'no reconnect attempt after 3500');
});

test('the portal serves byte for byte the SDK this test runs', async () => {
  const pkg = JSON.parse(await readFile(new URL('./node_modules/centrifuge/package.json', import.meta.url), 'utf8'));
  const vendored = await readFile(join(REPO, `pkg/portal/static/vendor/centrifuge-${pkg.version}/centrifuge.js`));
  const npm = await readFile(new URL('./node_modules/centrifuge/dist/centrifuge.js', import.meta.url));
  assert.ok(vendored.equals(npm), `static/vendor/centrifuge-${pkg.version}/centrifuge.js differs from the npm package`);
  const served = Buffer.from(await (await fetch(`${gw.base}/vendor/centrifuge-${pkg.version}/centrifuge.js`)).arrayBuffer());
  assert.ok(served.equals(npm), 'the gateway serves the vendored file');
});
