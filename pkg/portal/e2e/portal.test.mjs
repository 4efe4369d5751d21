// The demo portal in real headless Chromium (Debian's chromium, driven by
// playwright-core; no browser is downloaded) against the real gateway in
// -dev: simulators running, demo identities from /dev/tokens. Test events
// are published through the server API so assertions do not depend on
// simulator timing.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Gateway, buildGateway, mintToken, deployment, envelope, waitFor, REPO } from './gateway.mjs';

const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const VIEWPORT = { width: 1440, height: 1000 };
const T = 10000; // default wait for something to show up

let gw;
let browser;
let context;
let shots;
const pageErrors = [];
const pages = {};

before(async () => {
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install chromium (or set CHROMIUM_PATH)`);
  gw = new Gateway({ bin: await buildGateway(), dev: true });
  await gw.start();
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  context = await browser.newContext({ viewport: VIEWPORT, locale: 'en-GB', timezoneId: 'UTC' });
  context.setDefaultTimeout(T);
  // PULSE_SCREENSHOTS=1 refreshes the README's screenshots in docs/screenshots.
  shots = process.env.PULSE_SCREENSHOTS ? join(REPO, 'docs/screenshots') : await mkdtemp(join(tmpdir(), 'pulse-shots-'));
  await mkdir(shots, { recursive: true });
});

after(async () => {
  await browser?.close();
  await gw?.close();
  if (!shots) return;
  if (process.env.PULSE_SCREENSHOTS || process.env.PULSE_E2E_KEEP) console.log(`# screenshots in ${shots}`);
  else await rm(shots, { recursive: true, force: true });
});

async function open(query, { route } = {}) {
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${query}: ${e.message}`));
  if (route) await route(page);
  await page.goto(`${gw.base}/${query}`);
  return page;
}

/** explain adds what the page shows to a failure, to make it actionable. */
async function explain(page, fn) {
  try {
    return await fn();
  } catch (e) {
    const state = await page.locator('#conn-state').innerText().catch(() => '?');
    const banners = await page.locator('#banners').innerText().catch(() => '?');
    e.message += `\n  page ${page.url()}: connection "${state}", banners "${banners}"\n  gateway log:\n${await gw.logs()}`;
    throw e;
  }
}

async function connected(page, timeout = T) {
  await page.locator('#conn-state[data-state="connected"]').waitFor({ timeout });
}

/**
 * front brings a tab to the front before clicking in it: Chromium paints
 * only the front tab, and a click waits for the element to be painted
 * stable, which in a background tab takes seconds.
 */
async function front(page) {
  await page.bringToFront();
  return page;
}

/** live waits until a panel's subscription is up. */
async function live(page, panel) {
  await page.locator(`#${panel} .panel-head .sub-state.live`).waitFor();
}

test('the portal loads and offers the demo identities', async () => {
  const page = await open('');
  const ids = page.locator('#identities .identity');
  await ids.first().waitFor();
  assert.equal(await ids.count(), 4);
  const text = await page.locator('#identities').innerText();
  for (const who of ['acme user (alice)', 'acme user (anna)', 'globex user (bob)', 'platform admin (root)']) {
    assert.ok(text.includes(who), `${who} offered`);
  }
  await page.screenshot({ path: join(shots, 'portal-picker.png') });
  await ids.filter({ hasText: 'alice' }).click();
  await connected(page);
  assert.match(page.url(), /\?as=alice$/);
  await page.close();
});

test('an acme user sees acme deployments progress, and never a globex event', async () => {
  const page = pages.alice = await open('?as=alice');
  await connected(page);
  await live(page, 'deployments');
  await live(page, 'billing');

  const id = `dep-e2e-${Date.now().toString(36)}`;
  const card = page.locator(`#deployments [data-deployment-id="${id}"]`);
  const bar = card.locator('[role="progressbar"]');
  await gw.publish('tenant:acme:deployments', deployment('acme', id, 'starting', 0, 'queued', [`Deployment ${id} queued`]));
  await card.waitFor();
  // Interleave the other tenant's events: they must never show.
  await gw.publish('tenant:globex:deployments', deployment('globex', `${id}-globex`, 'starting', 0, 'queued', ['globex only']));
  await gw.publish('tenant:globex:billing', { tenantId: 'globex', type: 'invoice', status: 'issued', amount: 4200, currency: 'EUR', message: `globex invoice ${id}` });
  await gw.publish('tenant:acme:deployments', deployment('acme', id, 'in_progress', 40, 'start containers', ['Started 3 containers']));
  await waitFor(async () => (await bar.getAttribute('aria-valuenow')) === '40', { what: 'progress 40' });
  assert.match(await card.locator('.step').innerText(), /start containers/i);
  assert.match(await card.locator('.logs').innerText(), /Started 3 containers/);
  assert.equal(await card.getAttribute('data-status'), 'in_progress');

  // The CloudEvents envelope of pkg/events is understood as well.
  await gw.publish('tenant:acme:deployments', envelope('io.pulse.deployment.completed', id,
    deployment('acme', id, 'completed', 100, 'completed', ['Instance ready'], { url: `https://${id}.acme.example` })));
  await waitFor(async () => (await bar.getAttribute('aria-valuenow')) === '100', { what: 'progress 100' });
  assert.equal(await card.getAttribute('data-status'), 'completed');
  assert.equal(await card.locator('.url a').innerText(), `https://${id}.acme.example`);
  assert.match(await card.locator('.badge').innerText(), /completed/i);

  // Live simulator traffic reaches the page too: a simulated deployment,
  // billing event or metrics sample (the simulators' pace is their own).
  await waitFor(async () => (await page.locator('#deployments [data-deployment-id]:not([data-deployment-id^="dep-e2e"]), #billing .note, #metrics .tile').count()) > 0,
    { timeout: 30000, what: 'simulator traffic on an acme channel' });

  // Another acme billing event, to be sure the globex one had time to arrive if it ever would.
  await gw.publish('tenant:acme:billing', { tenantId: 'acme', type: 'payment', status: 'succeeded', amount: 9900, currency: 'EUR', message: `acme payment ${id}` });
  await page.locator('#billing .note-msg', { hasText: `acme payment ${id}` }).waitFor();
  const tenants = await page.locator('#deployments [data-tenant], #billing [data-tenant]').evaluateAll((els) => els.map((e) => e.dataset.tenant).filter(Boolean));
  assert.ok(tenants.length > 0);
  assert.deepEqual([...new Set(tenants)], ['acme']);
  for (const panel of ['#deployments', '#billing', '#metrics']) {
    assert.ok(!(await page.locator(panel).innerText()).includes('globex'), `${panel} never shows globex`);
  }
  assert.equal(await page.locator('#deployments .alert.error').count(), 0, 'no isolation alarm');
});

test('history search by text and date, refused for another tenant\'s channel', async () => {
  const page = await front(pages.alice);
  const id = `dep-hist-${Date.now().toString(36)}`;
  for (const [status, progress] of [['starting', 0], ['in_progress', 50], ['failed', 50]]) {
    await gw.publish('tenant:acme:deployments', deployment('acme', id, status, progress, 'migrate database', [], status === 'failed' ? { reason: 'migration lock held' } : {}));
  }
  const rows = page.locator('#history-results tbody tr');
  await page.fill('#history-channel', 'tenant:acme:deployments');
  await page.fill('#history-q', id);
  await page.click('#history button[type="submit"]');
  await waitFor(async () => (await rows.count()) === 3, { what: '3 matching rows' });
  assert.match(await rows.first().innerText(), /failed/);
  assert.match(await page.locator('#history-meta').innerText(), /3 results/);

  await page.fill('#history-q', 'migration lock held');
  await page.click('#history button[type="submit"]');
  await waitFor(async () => (await page.locator('#history-results tbody tr', { hasText: id }).count()) === 1, { what: 'the failed event by reason' });

  // A window that ends before the events were stored finds none of them.
  await page.fill('#history-q', id);
  await page.fill('#history-until', '2001-01-01T00:00:00');
  await page.click('#history button[type="submit"]');
  await page.locator('#history-meta', { hasText: 'Nothing found' }).waitFor();
  await page.fill('#history-until', '');

  // Pages of 20, newest first; "Older results" continues with next_before.
  const paging = `tenant:acme:paging${Date.now().toString(36)}`;
  for (let n = 1; n <= 25; n++) await gw.publish(paging, { n, message: `event ${n}` });
  await page.fill('#history-channel', paging);
  await page.fill('#history-q', '');
  await page.click('#history button[type="submit"]');
  await waitFor(async () => (await rows.count()) === 20, { what: 'a first page of 20' });
  assert.match(await rows.first().innerText(), /event 25/);
  await page.click('#history button:has-text("Older results")');
  await waitFor(async () => (await rows.count()) === 25, { what: 'the older page' });
  assert.match(await rows.last().innerText(), /event 1\b/);
  assert.ok(await page.locator('#history button:has-text("Older results")').isHidden(), 'nothing older');

  await page.fill('#history-channel', 'tenant:globex:deployments');
  await page.fill('#history-q', '');
  await page.click('#history button[type="submit"]');
  await page.locator('#history-meta.error', { hasText: '103' }).waitFor();
  await page.fill('#history-channel', 'tenant:acme:deployments');
});

test('presence shows two tabs of one tenant, each seeing the other', async () => {
  const alice = pages.alice;
  const anna = pages.anna = await open('?as=anna');
  await connected(anna);
  for (const [page, other] of [[alice, 'anna'], [anna, 'alice']]) {
    await page.locator(`#presence [data-user="${other}"][data-status="online"]`).waitFor();
    await page.locator('#presence-count', { hasText: '2 online' }).waitFor();
    await page.locator(`#collab-editors [data-user="${other}"]`).waitFor();
  }
  // A second tab of Alice counts as one more tab of the same user.
  const alice2 = await open('?as=alice');
  await connected(alice2);
  await anna.locator('#presence [data-user="alice"][data-tabs="2"]').waitFor();
  assert.match(await anna.locator('#presence [data-user="alice"]').innerText(), /2 tabs/);
  await alice2.close();
  await anna.locator('#presence [data-user="alice"][data-tabs="1"]').waitFor();
});

test('a field change in one tab appears in the other, with who is editing', async () => {
  const { alice, anna } = pages;
  await live(alice, 'collab');
  await live(anna, 'collab');
  const name = `acme-erp-${Date.now().toString(36)}`;

  await front(alice);
  await alice.click('#field-instanceName');
  await anna.locator('#collab .editing[data-user="alice"]', { hasText: 'Alice is editing' }).waitFor();
  await alice.fill('#field-instanceName', name);
  await waitFor(async () => (await anna.inputValue('#field-instanceName')) === name, { what: 'the name typed by Alice in Anna\'s tab' });
  await anna.locator('#field-instanceName ~ .field-note[data-by="alice"]').waitFor();

  await front(anna);
  await anna.selectOption('#field-plan', 'enterprise');
  await waitFor(async () => (await alice.inputValue('#field-plan')) === 'enterprise', { what: 'the plan chosen by Anna in Alice\'s tab' });
  await anna.check('#field-maintenance');
  await waitFor(async () => alice.isChecked('#field-maintenance'), { what: 'maintenance mode set by Anna' });
  await anna.uncheck('#field-maintenance');
  await waitFor(async () => !(await alice.isChecked('#field-maintenance')), { what: 'maintenance mode cleared by Anna' });

  // Anna starts editing the domain: Alice sees it, for the screenshot too.
  await anna.click('#field-domain');
  await alice.locator('#collab .editing[data-user="anna"]', { hasText: 'Anna is editing' }).waitFor();
  await alice.locator('#collab').screenshot({ path: join(shots, 'collaboration.png') });

  // A tab opened later rebuilds the form from the channel's history.
  const late = await open('?as=anna');
  await live(late, 'collab');
  await waitFor(async () => (await late.inputValue('#field-instanceName')) === name, { what: 'the form state from history' });
  assert.equal(await late.inputValue('#field-plan'), 'enterprise');
  await late.close();
});

test('a forbidden channel shows the gateway\'s error', async () => {
  const page = await front(pages.alice);
  assert.equal(await page.inputValue('#probe-channel'), 'tenant:globex:deployments');
  await page.click('#probe-subscribe');
  const result = page.locator('#probe-result');
  await page.locator('#probe-result[data-code="103"]').waitFor();
  assert.match(await result.innerText(), /103 permission denied/);

  await page.fill('#probe-channel', 'tenant:acme:deployments');
  await page.click('#probe-publish');
  await page.locator('#probe-result[data-code="103"]', { hasText: 'Publish' }).waitFor();

  await page.fill('#probe-channel', 'nosuchns:x');
  await page.click('#probe-subscribe');
  await page.locator('#probe-result[data-code="102"]').waitFor();
  await page.fill('#probe-channel', 'tenant:globex:deployments');
  assert.equal(await page.locator('#conn-state').getAttribute('data-state'), 'connected', 'refusals keep the connection');
});

test('the platform admin reads any tenant and the admin alerts, but may not edit a tenant\'s form', async () => {
  const page = await open('?as=root&tenant=globex');
  await connected(page);
  await live(page, 'deployments');
  await live(page, 'admin-alerts');
  assert.equal(await page.locator('#deployments code.channel').innerText(), 'tenant:globex:deployments');
  const id = `dep-admin-${Date.now().toString(36)}`;
  await gw.publish('tenant:globex:deployments', deployment('globex', id, 'in_progress', 60, 'migrate database'));
  await page.locator(`#deployments [data-deployment-id="${id}"][data-tenant="globex"]`).waitFor();
  await gw.publish('admin:billing:alerts', { alertId: id, kind: 'payment_failed', severity: 'warning', tenantId: 'globex', amount: 29900, currency: 'USD', message: `Payment failed for globex (${id})` });
  await page.locator('#admin-alerts .note-msg', { hasText: id }).waitFor();
  assert.ok(await page.locator('#field-instanceName').isDisabled(), 'no publish grant: read-only form');
  await page.click('#probe-publish'); // suggestion: the tenant's collaboration channel
  await page.locator('#probe-result[data-code="103"]').waitFor();
  await page.close();
});

test('the gateway restarts and the page recovers the events published meanwhile', async () => {
  // The page's WebSocket goes through a gate the test controls: while the
  // gateway restarts the gate refuses the page's reconnect attempts, so
  // that events published right after the restart are certainly published
  // while the page is disconnected. Then the gate opens and the SDK
  // reconnects on its own and recovers them.
  const gate = { open: true };
  const page = await open('?as=alice&maxReconnectDelay=1000', {
    route: (p) => p.routeWebSocket(/\/connection\/websocket/, (ws) => {
      if (gate.open) ws.connectToServer();
      else ws.close({ code: 1011, reason: 'gateway unreachable (test gate)' });
    }),
  });
  await explain(page, () => restartAndRecover(page, gate));
});

async function restartAndRecover(page, gate) {
  await connected(page);
  await live(page, 'deployments');
  const id = `dep-rec-${Date.now().toString(36)}`;
  await gw.publish('tenant:acme:deployments', deployment('acme', id, 'starting', 0, 'queued', ['before the restart']));
  await page.locator(`#deployments [data-deployment-id="${id}"]`).waitFor();

  gate.open = false;
  await gw.stop(); // SIGTERM: the gateway closes its clients with 3001
  await page.locator('#conn-state[data-state="reconnecting"]').waitFor();
  await page.locator('#banner-outage', { hasText: 'Connection lost' }).waitFor();
  await gw.start(); // same data dir: same streams, same epochs

  const missed = [
    ['tenant:acme:deployments', deployment('acme', id, 'in_progress', 50, 'migrate database', ['published while the page was away'])],
    ['tenant:acme:deployments', envelope('io.pulse.deployment.completed', id, deployment('acme', id, 'completed', 100, 'completed', ['done while the page was away']))],
    ['tenant:acme:billing', { tenantId: 'acme', type: 'invoice', status: 'issued', amount: 2900, currency: 'EUR', message: `Invoice for ${id} (missed)` }],
  ];
  for (const [ch, data] of missed) await gw.publish(ch, data);
  await page.locator('#banner-outage', { hasText: 'retrying' }).waitFor();
  assert.notEqual(await page.locator('#conn-state').getAttribute('data-state'), 'connected', 'published while the page was disconnected');

  gate.open = true;
  await connected(page);
  const banner = page.locator('#banner-recovered');
  await banner.waitFor();
  await waitFor(async () => Number(await banner.getAttribute('data-recovered')) >= missed.length,
    { what: 'the recovered count in the banner' }).catch(async (e) => { throw new Error(`${e.message}; banner: ${await banner.innerText()}`); });
  assert.match(await banner.innerText(), /Reconnected after [\d.]+ s — \d+ missed events recovered \(.*deployments \d+.*billing \d+/);
  const card = page.locator(`#deployments [data-deployment-id="${id}"]`);
  await waitFor(async () => (await card.getAttribute('data-status')) === 'completed', { what: 'the deployment completed while away' });
  assert.match(await card.locator('.logs').innerText(), /before the restart[\s\S]*published while the page was away[\s\S]*done while the page was away/);
  await page.locator('#billing .note-msg', { hasText: `Invoice for ${id} (missed)` }).waitFor();
  await page.screenshot({ path: join(shots, 'recovered.png'), clip: { x: 0, y: 0, width: VIEWPORT.width, height: 520 } });
  await page.close();
}

test('"Drop connection" shows the outage, then what was recovered', async () => {
  const page = await front(pages.alice);
  await explain(page, () => dropAndRecover(page));
});

async function dropAndRecover(page) {
  // This tab kept the SDK's default backoff (up to 20 s) through the restart
  // of the previous test: give it time to be back.
  await connected(page, 30000);
  await page.click('#drop');
  await page.locator('#banner-outage', { hasText: 'dropped on purpose' }).waitFor();
  const msg = `Invoice while dropped ${Date.now().toString(36)}`;
  await gw.publish('tenant:acme:billing', { tenantId: 'acme', type: 'invoice', status: 'issued', amount: 1500, currency: 'EUR', message: msg });
  const banner = page.locator('#banner-recovered');
  await banner.waitFor({ timeout: 15000 });
  await waitFor(async () => Number(await banner.getAttribute('data-recovered')) >= 1, { what: 'a recovered count' });
  await page.locator('#billing .note-msg', { hasText: msg }).waitFor();
}

test('a refused token and a gateway that is gone are explained, and without -dev a token can be pasted', async () => {
  const page = await open('', { route: (p) => p.route('**/dev/tokens', (r) => r.fulfill({ status: 404, body: '404 page not found' })) });
  await page.locator('#not-dev').waitFor();
  const forged = mintToken({ sub: 'mallory', tenant: 'acme', info: { name: 'Mallory' } }, { secret: 'not-the-gateway-secret-0123456789abcdef' });
  await page.fill('#token-input', forged);
  await page.click('#token-connect');
  await page.locator('#banner-refused[data-code="3500"]').waitFor();
  assert.match(await page.locator('#banner-refused').innerText(), /refused the token.*3500/);
  await page.locator('#conn-state[data-state="disconnected"]').waitFor();

  // A valid pasted token works the same as a demo identity.
  await page.goto(`${gw.base}/`);
  await page.fill('#token-input', mintToken({ sub: 'carol', tenant: 'acme', info: { name: 'Carol' } }));
  await page.click('#token-connect');
  await connected(page);
  await live(page, 'deployments');
  assert.ok(await page.locator('#field-instanceName').isDisabled(), 'no publish grant in this token');
  await page.close();
});

test('screenshot of the acme dashboard', async () => {
  const { alice, anna } = pages;
  // A few minutes of metrics and an alert, so the chart has something to show.
  const now = Date.now();
  for (let i = 90; i >= 0; i--) {
    const t = now - i * 2000;
    const wave = (p, a) => Math.round((p + a * Math.sin((i + p) / 9) + (i % 7) * 0.6) * 10) / 10;
    await gw.publish('tenant:acme:metrics', envelope('io.pulse.metrics.sample', 'acme', {
      tenantId: 'acme', cpu: wave(55, 18), memory: wave(62, 6), disk: wave(41, 2), requests: 180 + (i % 13) * 7,
      networkIn: 2400000 + i * 1000, networkOut: 860000 + i * 500, activeInstances: 4, timestamp: new Date(t).toISOString(),
    }));
  }
  await gw.publish('tenant:acme:monitoring', envelope('io.pulse.monitoring.alert', 'cpu-warning', {
    tenantId: 'acme', alertId: 'acme-cpu-warning', status: 'firing', severity: 'warning', resource: 'cpu', value: 81.4, threshold: 80,
    message: 'CPU at 81.4% (warning threshold 80%)', startsAt: new Date().toISOString(), timestamp: new Date().toISOString(),
  }));
  await alice.locator('#metrics .u-over').waitFor();
  await alice.locator('#metrics .alert-item', { hasText: 'CPU at 81.4%' }).waitFor();
  await front(anna);
  await anna.locator('#field-domain').blur();
  await anna.click('#field-domain');
  await front(alice);
  await alice.locator('#collab .editing[data-user="anna"]').waitFor();
  await alice.fill('#probe-channel', 'tenant:globex:deployments');
  await alice.click('#probe-subscribe');
  await alice.locator('#probe-result[data-code="103"]').waitFor();
  await alice.fill('#history-channel', 'tenant:acme:deployments');
  await alice.fill('#history-q', '');
  await alice.click('#history button[type="submit"]');
  await alice.locator('#history-results tbody tr').first().waitFor();
  await alice.mouse.move(0, 0);
  await alice.evaluate(() => window.scrollTo(0, 0));
  await alice.waitForTimeout(300);
  await alice.screenshot({ path: join(shots, 'portal-acme.png'), fullPage: true });
});

test('no page threw', () => {
  assert.deepEqual(pageErrors, []);
});
