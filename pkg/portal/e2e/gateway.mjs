// Test helpers: build the real gateway once, run it on free loopback ports
// with a fixed secret, API key and data directory (so a restart keeps the
// streams, their epochs and every token valid), publish through its HTTP
// API, and mint tokens. No mocks: the tests talk to the binary users run.

import { spawn, execFile } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createWriteStream, rmSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const here = dirname(fileURLToPath(import.meta.url));
/** REPO is the repository root (the Go module). */
export const REPO = resolve(here, '../../..');
export const SECRET = 'e2e-hmac-secret-0123456789abcdef-0123456789';
export const API_KEY = 'e2e-api-key';

/**
 * buildGateway compiles ./cmd/gateway into a temp dir and returns the
 * binary's path. PULSE_GATEWAY_BIN skips the build (a binary built
 * elsewhere, e.g. by CI before the tests).
 */
export async function buildGateway() {
  if (process.env.PULSE_GATEWAY_BIN) return process.env.PULSE_GATEWAY_BIN;
  const dir = await mkdtemp(join(tmpdir(), 'pulse-e2e-bin-'));
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));
  const bin = join(dir, 'gateway');
  await promisify(execFile)('go', ['build', '-o', bin, './cmd/gateway'], { cwd: REPO, maxBuffer: 16 << 20 });
  return bin;
}

/** freePort asks the kernel for an unused loopback port. */
export function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Gateway is one gateway process that can be stopped and started again. */
export class Gateway {
  /**
   * @param {object} o
   * @param {string} o.bin gateway binary
   * @param {boolean} [o.dev] -dev: simulators and /dev/tokens
   * @param {string[]} [o.args] extra flags
   */
  constructor({ bin, dev = true, args = [] }) {
    this.bin = bin;
    this.dev = dev;
    this.extra = args;
    this.proc = null;
    this.starts = 0;
  }

  get base() { return `http://127.0.0.1:${this.port}`; }
  get wsURL() { return `ws://127.0.0.1:${this.port}/connection/websocket`; }

  async start() {
    if (!this.dir) {
      this.dir = await mkdtemp(join(tmpdir(), 'pulse-e2e-'));
      this.port = await freePort();
      this.natsPort = await freePort();
      await mkdir(join(this.dir, 'data'));
    }
    const args = [
      '-addr', `127.0.0.1:${this.port}`,
      '-nats-listen', `127.0.0.1:${this.natsPort}`,
      '-data-dir', join(this.dir, 'data'),
      '-jwt-hmac-secret', SECRET,
      '-api-key', API_KEY,
      '-shutdown-timeout', '5s',
      '-log-level', 'debug',
      ...(this.dev ? ['-dev'] : []),
      ...this.extra,
    ];
    this.starts++;
    this.logFile = join(this.dir, `gateway-${this.starts}.log`);
    const log = createWriteStream(this.logFile);
    const proc = spawn(this.bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    proc.stdout.pipe(log);
    proc.stderr.pipe(log);
    this.exited = new Promise((r) => proc.on('exit', (code, signal) => r({ code, signal })));
    this.proc = proc;
    const deadline = Date.now() + 30000;
    for (;;) {
      const exit = await Promise.race([this.exited, sleep(100).then(() => null)]);
      if (exit) throw new Error(`gateway exited during start-up (${JSON.stringify(exit)}):\n${await this.logs()}`);
      try {
        const res = await fetch(`${this.base}/readyz`);
        if (res.status === 200) return;
      } catch { /* not listening yet */ }
      if (Date.now() > deadline) throw new Error(`gateway not ready within 30 s:\n${await this.logs()}`);
    }
  }

  /** stop sends SIGTERM (clients get 3001 and reconnect) and waits for the exit. */
  async stop() {
    if (!this.proc) return;
    const proc = this.proc;
    this.proc = null;
    proc.kill('SIGTERM');
    const exit = await Promise.race([this.exited, sleep(15000).then(() => null)]);
    if (!exit) {
      proc.kill('SIGKILL');
      await this.exited;
      throw new Error('gateway did not stop within 15 s of SIGTERM');
    }
  }

  async restart() {
    await this.stop();
    await this.start();
  }

  /** close stops the gateway and removes its data. */
  async close() {
    await this.stop().catch(() => {});
    if (this.dir && !process.env.PULSE_E2E_KEEP) await rm(this.dir, { recursive: true, force: true });
  }

  async logs() {
    try {
      return (await readFile(this.logFile, 'utf8')).split('\n').slice(-60).join('\n');
    } catch {
      return '(no log)';
    }
  }

  /** api calls the server HTTP API (X-API-Key) and returns its result. */
  async api(method, body) {
    const res = await fetch(`${this.base}/api/${method}`, {
      method: 'POST',
      headers: { 'X-API-Key': API_KEY, 'Content-Type': 'application/json' },
      body: JSON.stringify(body),
    });
    const reply = await res.json();
    if (!res.ok || reply.error) throw new Error(`/api/${method}: ${res.status} ${JSON.stringify(reply)}`);
    return reply.result;
  }

  /** publish stores data on a channel; it resolves to {offset, epoch}. */
  publish(channel, data) {
    return this.api('publish', { channel, data });
  }

  async devTokens() {
    const res = await fetch(`${this.base}/dev/tokens`);
    if (!res.ok) throw new Error(`/dev/tokens: ${res.status}`);
    return (await res.json()).tokens;
  }
}

const b64url = (v) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * mintToken signs claims with HS256. ttl (seconds) sets exp from now; a
 * negative ttl gives an expired token. secret defaults to the gateway's.
 */
export function mintToken(claims, { ttl = 3600, secret = SECRET } = {}) {
  const now = Math.floor(Date.now() / 1000);
  const body = { iat: now, exp: now + ttl, ...claims };
  const head = b64url({ alg: 'HS256', typ: 'JWT' });
  const payload = b64url(body);
  const sig = createHmac('sha256', secret).update(`${head}.${payload}`).digest('base64url');
  return `${head}.${payload}.${sig}`;
}

/** waitFor polls fn until it returns a truthy value. */
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'condition' } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
    await sleep(interval);
  }
}

/** deployment builds a flat deployment event as the simulators publish it. */
export function deployment(tenant, id, status, progress, step, logs = [], extra = {}) {
  return {
    tenantId: tenant, deploymentId: id, instanceType: 'odoo', status, progress,
    currentStep: step, logs, timestamp: new Date().toISOString(), ...extra,
  };
}

/** envelope wraps data in a CloudEvents 1.0 envelope (pkg/events). */
export function envelope(type, subject, data) {
  return {
    specversion: '1.0', id: `e2e-${subject}-${Math.random().toString(36).slice(2)}`, source: '/pulse/e2e',
    type, time: new Date().toISOString(), subject, datacontenttype: 'application/json', data,
  };
}
