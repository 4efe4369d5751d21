// Pulse demo portal: pick a demo identity (or paste a token), then watch the
// tenant's live events through the official centrifuge-js SDK. Plain ES
// modules, no build step; the SDK and uPlot are vendored in vendor/.
//
// URL parameters: as=<user> picks a -dev identity (as=token uses the pasted
// one), tenant=<t> the tenant a platform admin looks at,
// minReconnectDelay/maxReconnectDelay (ms) tune the SDK's backoff.

import { h, replace, avatar, timeAgo } from './js/dom.js';
import { decodeToken, grants } from './js/events.js';
import { Connection, SDK_VERSION } from './js/connection.js';
import { deploymentsPanel } from './js/panels/deployments.js';
import { billingPanel } from './js/panels/billing.js';
import { metricsPanel } from './js/panels/metrics.js';
import { presencePanel } from './js/panels/presence.js';
import { collaborationPanel } from './js/panels/collaboration.js';
import { historyPanel } from './js/panels/history.js';
import { probePanel } from './js/panels/probe.js';

const params = new URLSearchParams(location.search);
const app = document.getElementById('app');
const TOKEN_KEY = 'pulse.token';

main().catch((e) => {
  console.error(e);
  replace(app, h('p', { class: 'alert error' }, `The portal failed to start: ${e.message}`));
});

async function main() {
  const dev = await loadDevTokens();
  const as = params.get('as');
  let identity = null;
  if (as === 'token') {
    const t = sessionStorage.getItem(TOKEN_KEY);
    if (t) identity = identityFromToken(t, 'pasted');
  } else if (as && dev.tokens) {
    const t = dev.tokens.find((x) => x.user === as);
    if (t) identity = identityFromToken(t.token, 'dev', t.label);
  }
  if (!identity) {
    showPicker(dev, as);
    return;
  }
  showDashboard(identity, dev);
}

/** loadDevTokens asks the gateway for its -dev identities; 404 = not in -dev. */
async function loadDevTokens() {
  try {
    const res = await fetch('/dev/tokens', { cache: 'no-store' });
    if (res.status === 404) return { dev: false, tokens: null };
    if (!res.ok) return { dev: false, tokens: null, error: `GET /dev/tokens: ${res.status}` };
    const body = await res.json();
    return { dev: true, tokens: body.tokens || [] };
  } catch (e) {
    return { dev: false, tokens: null, error: `gateway unreachable (${e.message})` };
  }
}

function identityFromToken(token, source, label) {
  const claims = decodeToken(token) || {};
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  const user = claims.sub || 'unknown';
  return {
    token, source, claims, user, roles,
    name: claims.info?.name || user,
    tenant: typeof claims.tenant === 'string' ? claims.tenant : '',
    admin: roles.includes('admin'),
    label: label || `${claims.info?.name || user}${claims.tenant ? ` (${claims.tenant})` : ''}`,
  };
}

// ---------------------------------------------------------------- picker

function showPicker(dev, wanted) {
  document.title = 'Pulse — demo portal';
  const paste = h('textarea', { id: 'token-input', rows: 3, placeholder: 'eyJhbGciOi…', spellcheck: 'false', 'aria-label': 'JWT' });
  const pasteForm = h('form', {
    class: 'paste', onsubmit: (e) => {
      e.preventDefault();
      const t = paste.value.trim();
      if (!t) return;
      sessionStorage.setItem(TOKEN_KEY, t);
      location.search = '?as=token';
    },
  },
  h('label', { for: 'token-input' }, 'Connect with your own token (a JWT signed with the gateway\'s secret or key)'),
  paste,
  h('button', { type: 'submit', class: 'primary', id: 'token-connect' }, 'Connect with this token'));

  const describe = (t) => {
    const c = decodeToken(t.token) || {};
    if ((c.roles || []).includes('admin')) return 'Platform admin: every tenant\'s channels and admin:billing:alerts';
    return `Member of tenant ${t.tenant}: tenant:${t.tenant}:* only${c.allow?.publish ? ', may edit the shared settings form' : ''}`;
  };

  replace(app,
    h('header', { class: 'top' }, brand()),
    h('main', { class: 'picker' },
      h('section', { class: 'intro' },
        h('h1', null, 'Real-time events from NATS JetStream, in the browser'),
        h('p', null, 'This portal talks to the Pulse gateway with the official ', h('code', null, 'centrifuge-js'),
          ` SDK (${SDK_VERSION}), unchanged: live deployments, billing, metrics, presence, collaboration and history, with recovery of everything missed while disconnected.`)),
      wanted ? h('p', { class: 'alert warn' }, `No identity "${wanted}" here. Pick one below.`) : null,
      dev.error ? h('p', { class: 'alert error' }, `Could not load the demo identities: ${dev.error}`) : null,
      dev.dev ? h('section', { class: 'identities', id: 'identities' },
        h('h2', null, 'Who are you?'),
        h('div', { class: 'identity-grid' }, dev.tokens.map((t) => {
          const c = decodeToken(t.token) || {};
          const name = c.info?.name || t.user;
          return h('a', { class: 'identity', href: `?as=${encodeURIComponent(t.user)}`, dataset: { user: t.user } },
            avatar(name, t.user),
            h('span', { class: 'identity-text' },
              h('strong', null, t.label),
              h('span', { class: 'muted' }, describe(t))));
        }))) : h('p', { class: 'alert info', id: 'not-dev' }, 'This gateway is not running with -dev, so it offers no demo identities. Paste a token issued for it.'),
      dev.dev ? h('details', { class: 'paste-box' }, h('summary', null, 'Use your own token instead'), pasteForm) : pasteForm));
}

function brand() {
  return h('a', { class: 'brand', href: location.pathname },
    h('span', { class: 'logo', 'aria-hidden': 'true' }, h('span'), h('span'), h('span')),
    h('span', null, 'Pulse'), h('span', { class: 'brand-sub' }, 'demo portal'));
}

// ------------------------------------------------------------- dashboard

function showDashboard(id, dev) {
  const knownTenants = [...new Set([...(dev.tokens || []).map((t) => t.tenant).filter(Boolean), id.tenant].filter(Boolean))];
  const tenant = id.tenant || (id.admin ? (params.get('tenant') || knownTenants[0] || 'acme') : '');
  document.title = `Pulse — ${id.name}${tenant ? ` · ${tenant}` : ''}`;

  let token = id.token;
  const getToken = id.source === 'dev' ? async () => {
    const fresh = await loadDevTokens();
    const t = fresh.tokens && fresh.tokens.find((x) => x.user === id.user);
    if (!t) throw new window.Centrifuge.UnauthorizedError('demo identity gone');
    token = t.token;
    return token;
  } : null;

  const statusEl = h('span', { class: 'conn connecting', id: 'conn-state', role: 'status' }, 'connecting…');
  const banners = h('div', { class: 'banners', id: 'banners', 'aria-live': 'polite' });
  const options = {};
  for (const k of ['minReconnectDelay', 'maxReconnectDelay']) {
    const v = Number(params.get(k));
    if (v > 0) options[k] = v;
  }
  const conn = new Connection({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/connection/websocket`,
    token, getToken, options,
    onStatus: (s) => renderStatus(statusEl, s),
    onBanner: (b) => renderBanner(banners, b),
  });
  window.pulse = { conn }; // for the curious, in DevTools

  const tenantSwitch = id.admin ? h('label', { class: 'tenant-switch' }, 'Tenant ',
    h('select', { id: 'tenant-select', onchange: (e) => { params.set('tenant', e.target.value); location.search = params.toString(); } },
      [...new Set([...knownTenants, tenant])].map((t) => h('option', { value: t, selected: t === tenant }, t)))) : null;
  const dropBtn = h('button', { type: 'button', class: 'secondary small', id: 'drop', title: 'Disconnect for 5 s, then reconnect and recover what was missed', onclick: () => conn.drop(5000) }, 'Drop connection 5 s');

  const header = h('header', { class: 'top' },
    brand(),
    h('span', { class: 'spacer' }),
    tenantSwitch,
    h('span', { class: 'who', id: 'who' }, avatar(id.name, id.user),
      h('span', null, h('strong', null, id.name), h('span', { class: 'muted' }, id.admin ? ' · platform admin' : id.tenant ? ` · ${id.tenant}` : ''))),
    statusEl, dropBtn,
    h('a', { class: 'secondary small button', href: location.pathname, id: 'switch' }, 'Switch identity'));

  const grid = h('main', { class: 'grid' });
  const health = h('span', { id: 'health' }, 'waiting for system:health…');
  const footer = h('footer', { class: 'foot' }, health, h('span', { class: 'spacer' }),
    h('span', null, `centrifuge-js ${SDK_VERSION} · uPlot 1.6.32 · gateway ${location.host}`));
  replace(app, header, banners, grid, footer);

  if (tenant) {
    const collabChannel = `tenant:${tenant}:collaboration`;
    const collabFeed = conn.feed(collabChannel, { history: 200, presence: true });
    const canPublish = grants(id.claims.allow?.publish, collabChannel);
    const other = knownTenants.find((t) => t !== tenant) || (tenant === 'globex' ? 'acme' : 'globex');
    grid.append(
      h('div', { class: 'col wide' },
        deploymentsPanel(conn, tenant),
        metricsPanel(conn, tenant)),
      h('div', { class: 'col' },
        presencePanel(conn, tenant, collabFeed, id),
        billingPanel(conn, { id: 'billing', title: 'Billing', channel: `tenant:${tenant}:billing` }),
        id.admin ? billingPanel(conn, { id: 'admin-alerts', title: 'Platform billing alerts', channel: 'admin:billing:alerts', admin: true }) : null,
        collaborationPanel(conn, collabFeed, { canPublish, me: id }),
        probePanel(conn, id.admin ? collabChannel : `tenant:${other}:deployments`)),
      h('div', { class: 'col full' },
        historyPanel({
          channels: [`tenant:${tenant}:deployments`, `tenant:${tenant}:billing`, `tenant:${tenant}:metrics`,
            `tenant:${tenant}:monitoring`, collabChannel, 'system:health', ...(id.admin ? ['admin:billing:alerts'] : [])],
          token: async () => token,
        })));
  } else {
    grid.append(h('div', { class: 'col full' },
      h('p', { class: 'alert info' }, 'This token names no tenant and no admin role: only system channels are readable.'),
      probePanel(conn, 'tenant:acme:deployments'),
      historyPanel({ channels: ['system:health'], token: async () => token })));
  }

  // system:health beats, per component.
  const beats = new Map();
  const renderHealth = () => {
    if (beats.size === 0) return;
    replace(health, [...beats.values()].map((b) => h('span', { class: `beat ${b.status === 'ok' ? 'ok' : 'bad'}` },
      h('span', { class: 'beat-dot' }), `${b.component} ${b.status} · ${timeAgo(b.at)}`)));
  };
  conn.feed('system:health', { history: 5 }).on('publication', (ev, meta) => {
    const d = ev.data;
    if (!d || !d.component) return;
    // A live beat counts from its arrival: simulators stamp simulated time.
    const at = meta.fromHistory ? (d.timestamp || ev.time) : Date.now();
    beats.set(d.component, { component: d.component, status: d.status || 'ok', at });
    renderHealth();
  });
  setInterval(renderHealth, 5000);

  conn.connect();
}

function renderStatus(el, s) {
  el.className = `conn ${s.state}`;
  el.dataset.state = s.state;
  let text;
  switch (s.state) {
    case 'connected': text = `Connected · client ${s.clientId.slice(0, 8)}`; break;
    case 'reconnecting': text = s.attempts ? `Reconnecting… attempt ${s.attempts}` : 'Reconnecting…'; break;
    case 'disconnected': text = s.code ? `Disconnected (${s.code} ${s.reason || ''})`.trim() : 'Disconnected'; break;
    default: text = s.error ? `Connecting… (${s.error})` : 'Connecting…';
  }
  replace(el, h('span', { class: 'conn-dot' }), text);
}

let bannerTimer = null;
function renderBanner(root, b) {
  clearTimeout(bannerTimer);
  if (!b) {
    // Keep a refusal visible; everything else is about a connection that is fine now.
    if (!root.querySelector('.banner.error')) replace(root);
    return;
  }
  const el = h('div', { class: `banner ${b.kind}`, id: `banner-${b.id}`, role: b.kind === 'error' ? 'alert' : 'status', dataset: { recovered: b.recovered ?? '', code: b.code ?? '' } },
    h('span', { class: 'banner-text' }, b.text),
    b.action ? h('a', { class: 'button small', href: b.action.href }, b.action.label) : null,
    h('button', { type: 'button', class: 'close', 'aria-label': 'dismiss', onclick: () => el.remove() }, '×'));
  replace(root, el);
  if (b.ttl) bannerTimer = setTimeout(() => el.remove(), b.ttl);
}
