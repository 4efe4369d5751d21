// One centrifuge-js client for the page, used exactly as the SDK's README
// says (no options the gateway would need), plus what every panel needs on
// top of it: the connection state, outages and what recovery brought back,
// and feeds that load recent history once and then stay live without gaps
// or duplicates.

import { unwrap } from './events.js';

const { Centrifuge } = window; // classic script vendor/centrifuge-*/centrifuge.js

/** SDK_VERSION is the vendored centrifuge-js (see docs/portal.md). */
export const SDK_VERSION = '5.8.0';

/** Messages for terminal disconnect codes (Centrifugo's, DESIGN §4). */
const TERMINAL = {
  1: 'the token was refused and could not be refreshed',
  3500: 'the gateway refused the token (invalid token)',
  3501: 'the gateway found a bad request',
  3503: 'the gateway asked this client not to reconnect',
  3504: 'the gateway has too many connections',
  3506: 'the gateway refused the protocol',
};

export class Connection {
  /**
   * @param {object} o
   * @param {string} o.url WebSocket endpoint
   * @param {string} o.token connection JWT
   * @param {null|(() => Promise<string>)} o.getToken fresh token when it expires
   * @param {object} o.options extra centrifuge-js options (reconnect delays)
   * @param {(s: object) => void} o.onStatus connection state for the header
   * @param {(b: object|null) => void} o.onBanner the outage/recovery/refusal banner
   */
  constructor({ url, token, getToken, options, onStatus, onBanner }) {
    this.onStatus = onStatus;
    this.onBanner = onBanner;
    this.feeds = new Map();
    this.clientId = '';
    this.outage = null; // {since, code, reason, attempts, error}
    this.reconnect = null; // {after, counts: Map, lost: Set, at}
    this.dropTimer = null;
    this.client = new Centrifuge(url, {
      token,
      getToken: getToken || undefined,
      name: 'pulse-portal',
      ...options,
    });
    this.#wire();
  }

  #wire() {
    const c = this.client;
    c.on('connecting', (ctx) => {
      if (ctx.code !== 0 && !this.outage) {
        this.outage = { since: Date.now(), code: ctx.code, reason: ctx.reason, attempts: 0, error: '' };
      }
      this.#status();
      this.#outageBanner();
    });
    c.on('error', (ctx) => {
      if (ctx.type === 'transport' || ctx.type === 'connect') {
        // The SDK reports each failed reconnect attempt as a transport error.
        const msg = ctx.error?.message || String(ctx.error?.code || '');
        if (this.outage) {
          this.outage.error = msg;
          this.outage.attempts++;
        }
        else if (c.state === 'connecting') this.initialError = msg;
        this.#status();
        this.#outageBanner();
      }
    });
    c.on('connected', (ctx) => {
      this.clientId = ctx.client;
      this.initialError = '';
      if (this.outage) {
        this.reconnect = { after: Date.now() - this.outage.since, counts: new Map(), lost: new Set(), at: Date.now() };
        this.outage = null;
        this.#recoveryBanner();
      } else if (this.dropTimer === null) {
        this.onBanner(null);
      }
      this.#status();
    });
    c.on('disconnected', (ctx) => {
      if (ctx.code === 0 && this.outage) {
        this.#status(); // a simulated drop: connect() follows
        return;
      }
      this.outage = null;
      this.terminal = { code: ctx.code, reason: ctx.reason };
      this.#status();
      if (ctx.code !== 0) {
        const why = TERMINAL[ctx.code] || `the gateway closed the connection (${ctx.reason || 'no reason given'})`;
        this.onBanner({
          kind: 'error', id: 'refused', code: ctx.code,
          text: `Disconnected: ${why} — code ${ctx.code}. Pick another identity or paste a valid token.`,
          action: { label: 'Choose identity', href: location.pathname },
        });
      }
    });
  }

  #status() {
    const c = this.client;
    let state = c.state;
    if (state === 'connecting' && this.outage) state = 'reconnecting';
    this.onStatus({
      state,
      clientId: state === 'connected' ? this.clientId : '',
      code: this.terminal?.code,
      reason: this.terminal?.reason,
      attempts: this.outage?.attempts || 0,
      error: this.outage?.error || this.initialError || '',
    });
  }

  #outageBanner() {
    const o = this.outage;
    if (!o) {
      if (this.initialError) {
        this.onBanner({ kind: 'warn', id: 'unreachable', text: `Cannot reach the gateway at ${location.host} (${this.initialError}) — retrying…` });
      }
      return;
    }
    const cause = o.code === 'drop' ? 'connection dropped on purpose'
      : `${o.reason || 'transport closed'}${o.code > 1 ? `, code ${o.code}` : ''}`;
    const retry = o.attempts > 0 ? `gateway unreachable, retrying (attempt ${o.attempts})` : 'reconnecting';
    this.onBanner({
      kind: 'warn', id: 'outage',
      text: `Connection lost (${cause}) — ${retry}… Events published meanwhile will be recovered.`,
    });
  }

  #recoveryBanner() {
    const r = this.reconnect;
    if (!r) return;
    let total = 0;
    const parts = [];
    for (const [ch, n] of r.counts) {
      total += n;
      if (n > 0) parts.push(`${ch.slice(ch.lastIndexOf(':') + 1)} ${n}`);
    }
    let text = `Reconnected after ${(r.after / 1000).toFixed(1)} s — `;
    text += total > 0
      ? `${total} missed event${total === 1 ? '' : 's'} recovered (${parts.join(', ')})`
      : 'no events were missed';
    if (r.lost.size > 0) {
      text += `. History did not cover the gap on ${[...r.lost].join(', ')}: state reloaded from history`;
    }
    this.onBanner({ kind: r.lost.size ? 'warn' : 'ok', id: 'recovered', text, recovered: total, ttl: 30000 });
  }

  /** noteRecovered is called by a feed whose subscription recovered. */
  noteRecovered(channel, n) {
    if (!this.reconnect) return;
    this.reconnect.counts.set(channel, (this.reconnect.counts.get(channel) || 0) + n);
    this.#recoveryBanner();
  }

  noteLost(channel) {
    if (!this.reconnect) return;
    this.reconnect.lost.add(channel);
    this.#recoveryBanner();
  }

  /** feed returns the page's one feed for a channel, creating it. */
  feed(channel, opts = {}) {
    let f = this.feeds.get(channel);
    if (!f) {
      f = new Feed(this, channel, opts);
      this.feeds.set(channel, f);
    }
    return f;
  }

  connect() {
    for (const f of this.feeds.values()) f.start();
    this.client.connect();
  }

  /** drop simulates a network drop: disconnect now, connect after ms. */
  drop(ms) {
    if (this.client.state !== 'connected') return;
    this.outage = { since: Date.now(), code: 'drop', reason: 'dropped', attempts: 0, error: '' };
    this.client.disconnect();
    this.#outageBanner();
    this.dropTimer = setTimeout(() => { this.dropTimer = null; this.client.connect(); }, ms);
  }

  publish(channel, data) {
    return this.client.publish(channel, data);
  }

  /**
   * probe subscribes to a channel once and reports what the gateway said:
   * {ok: true} or {ok: false, code, reason}.
   */
  probe(channel, timeoutMs = 8000) {
    if (this.client.getSubscription(channel)) return Promise.resolve({ ok: true, already: true });
    let sub;
    try {
      sub = this.client.newSubscription(channel);
    } catch (e) {
      return Promise.resolve({ ok: false, code: 0, reason: e.message });
    }
    return new Promise((resolve) => {
      const done = (r) => {
        clearTimeout(timer);
        sub.removeAllListeners();
        if (sub.state !== 'unsubscribed') sub.unsubscribe();
        this.client.removeSubscription(sub);
        resolve(r);
      };
      const timer = setTimeout(() => done({ ok: false, code: 0, reason: 'no answer from the gateway' }), timeoutMs);
      sub.on('subscribed', () => done({ ok: true }));
      sub.on('unsubscribed', (ctx) => done({ ok: false, code: ctx.code, reason: ctx.reason }));
      sub.on('error', (ctx) => {
        if (ctx.error && ctx.error.code >= 100 && ctx.error.code !== 109) {
          done({ ok: false, code: ctx.error.code, reason: ctx.error.message });
        }
      });
      sub.subscribe();
    });
  }
}

/**
 * Feed is one subscription and its listeners. On the first subscribe it
 * loads the last `history` publications (holding live ones back meanwhile),
 * then delivers every publication once, in offset order. After a reconnect
 * the SDK recovers the missed publications; the feed counts them for the
 * banner. When the gateway says recovery failed, listeners get 'reset' and
 * the history is loaded again.
 */
class Feed {
  constructor(conn, channel, { history = 0, presence = false } = {}) {
    this.conn = conn;
    this.channel = channel;
    this.historyLimit = history;
    this.presence = presence;
    this.last = 0; // offset of the last publication delivered
    this.loaded = false;
    this.buffer = null; // live publications held while history loads
    this.recovering = false; // publications delivered now come from recovery
    this.listeners = {};
    this.state = { status: 'subscribing' };
    this.sub = conn.client.getSubscription(channel) || conn.client.newSubscription(channel);
    this.#wire();
  }

  /** on adds a listener: publication(ev, meta), reset(), state(s), presence(clients), join(info), leave(info). */
  on(event, fn) {
    (this.listeners[event] ||= []).push(fn);
    if (event === 'state') fn(this.state);
    return this;
  }

  #emit(event, ...args) {
    for (const fn of this.listeners[event] || []) {
      try {
        fn(...args);
      } catch (e) {
        console.error(`listener ${event} on ${this.channel}:`, e);
      }
    }
  }

  #setState(s) {
    this.state = s;
    this.#emit('state', s);
  }

  start() {
    if (this.sub.state === 'unsubscribed') this.sub.subscribe();
  }

  #wire() {
    const s = this.sub;
    s.on('subscribing', (ctx) => {
      if (this.state.status !== 'error' || ctx.code !== 0) this.#setState({ status: 'subscribing' });
    });
    s.on('subscribed', (ctx) => {
      // centrifuge-js delivers the recovered publications synchronously
      // right after this event: they are the ones that arrive before the
      // next microtask.
      if (ctx.wasRecovering && ctx.recovered && ctx.hasRecoveredPublications) {
        this.recovering = true;
        queueMicrotask(() => { this.recovering = false; });
      }
      this.#subscribed(ctx);
    });
    s.on('unsubscribed', (ctx) => {
      if (ctx.code >= 100) {
        this.#setState({ status: 'error', code: ctx.code, message: ctx.reason });
      } else {
        this.#setState({ status: 'unsubscribed', code: ctx.code, message: ctx.reason });
      }
    });
    s.on('error', (ctx) => {
      const e = ctx.error || {};
      this.#setState({ status: 'retrying', code: e.code, message: e.message });
    });
    s.on('publication', (ctx) => {
      if (this.buffer) this.buffer.push(ctx);
      else this.#deliver(ctx, false);
    });
    s.on('join', (ctx) => this.#emit('join', ctx.info));
    s.on('leave', (ctx) => this.#emit('leave', ctx.info));
  }

  async #subscribed(ctx) {
    this.#setState({ status: 'subscribed' });
    if (ctx.wasRecovering && ctx.recovered) {
      this.conn.noteRecovered(this.channel, 0);
    } else if (this.historyLimit > 0) {
      if (ctx.wasRecovering) this.conn.noteLost(this.channel);
      if (this.loaded || ctx.wasRecovering) {
        this.last = 0;
        this.#emit('reset');
      }
      await this.#load();
    }
    this.loaded = true;
    if (this.presence) this.refreshPresence();
  }

  async #load() {
    this.buffer = [];
    let pubs = [];
    try {
      const r = await this.sub.history({ limit: this.historyLimit, reverse: true });
      pubs = r.publications.slice().reverse();
    } catch (e) {
      console.warn(`history of ${this.channel}:`, e);
    }
    const held = this.buffer || [];
    this.buffer = null;
    for (const p of pubs) this.#deliver(p, true);
    for (const p of held) this.#deliver(p, false);
  }

  #deliver(p, fromHistory) {
    const offset = Number(p.offset || 0);
    if (offset > 0 && offset <= this.last) return; // already delivered
    const recovered = !fromHistory && this.recovering;
    if (offset > 0) this.last = offset;
    if (recovered) this.conn.noteRecovered(this.channel, 1);
    const ev = unwrap(p.data);
    this.#emit('publication', ev, { offset, info: p.info, tags: p.tags, fromHistory, recovered, channel: this.channel });
  }

  async refreshPresence() {
    try {
      const r = await this.sub.presence();
      this.#emit('presence', r.clients || {});
    } catch (e) {
      console.warn(`presence of ${this.channel}:`, e);
    }
  }

  async presenceStats() {
    return this.sub.presenceStats();
  }
}
