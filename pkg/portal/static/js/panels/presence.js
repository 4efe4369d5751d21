// Who is online (original design, case 4): presence of
// tenant:<t>:presence, kept current by join/leave pushes, one row per user
// with an avatar, name, status (online, away when none of their tabs is
// visible) and "last seen". Away comes from the status messages tabs send
// on the collaboration channel.

import { h, replace, batched, avatar, timeAgo, clock } from '../dom.js';
import { panel, feedState } from './panel.js';

export function presencePanel(conn, tenant, collabFeed, me) {
  const channel = `tenant:${tenant}:presence`;
  const users = new Map(); // user -> {user, name, clients: Map(client -> since), since, lastSeen, lastActive}
  const statusByClient = new Map();
  const list = h('ul', { class: 'people' });
  const count = h('span', { class: 'muted', id: 'presence-count' });
  const { root, setState } = panel({ id: 'presence', title: 'Who is online', channel, extra: count, body: list });

  const nameOf = (info) => info?.connInfo?.name || info?.user || 'anonymous';
  function userEntry(info) {
    const key = info.user || info.client;
    let u = users.get(key);
    if (!u) {
      u = { user: key, name: nameOf(info), clients: new Map(), since: Date.now(), lastSeen: 0, lastActive: 0 };
      users.set(key, u);
    }
    u.name = nameOf(info);
    return u;
  }
  function statusOf(u) {
    if (u.clients.size === 0) return 'offline';
    for (const c of u.clients.keys()) if (statusByClient.get(c) !== 'away') return 'online';
    return 'away';
  }

  const render = batched(() => {
    const order = { online: 0, away: 1, offline: 2 };
    const all = [...users.values()].sort((a, b) =>
      ((b.user === me.user) - (a.user === me.user)) || (order[statusOf(a)] - order[statusOf(b)]) || a.name.localeCompare(b.name));
    const online = all.filter((u) => u.clients.size > 0);
    const tabs = online.reduce((n, u) => n + u.clients.size, 0);
    count.textContent = `${online.length} online · ${tabs} tab${tabs === 1 ? '' : 's'}`;
    if (all.length === 0) {
      replace(list, h('li', { class: 'empty' }, 'Nobody online'));
      return;
    }
    replace(list, all.map((u) => {
      const status = statusOf(u);
      let detail;
      if (status === 'offline') detail = `last seen ${timeAgo(u.lastSeen)}`;
      else if (u.lastActive) detail = `active ${timeAgo(u.lastActive)}`;
      else detail = `online since ${clock(u.since)}`;
      return h('li', { class: `person ${status}`, dataset: { user: u.user, status, tabs: u.clients.size } },
        avatar(u.name, u.user, status),
        h('div', { class: 'person-text' },
          h('span', { class: 'person-name' }, u.name, u.user === me.user ? h('span', { class: 'you' }, ' (you)') : null),
          h('span', { class: 'person-detail' },
            h('span', { class: `status-word ${status}` }, status),
            u.clients.size > 1 ? ` · ${u.clients.size} tabs` : '',
            ` · ${detail}`)));
    }));
  });

  const feed = conn.feed(channel, { presence: true });
  feed.on('state', (s) => setState(feedState(s)));
  feed.on('presence', (clients) => {
    // A full snapshot: everyone not in it has left.
    const seen = new Set();
    for (const info of Object.values(clients)) {
      const u = userEntry(info);
      if (!u.clients.has(info.client)) u.clients.set(info.client, Date.now());
      seen.add(info.client);
    }
    for (const u of users.values()) {
      for (const c of [...u.clients.keys()]) {
        if (!seen.has(c)) { u.clients.delete(c); if (u.clients.size === 0) u.lastSeen = Date.now(); }
      }
    }
    render();
  });
  feed.on('join', (info) => {
    const u = userEntry(info);
    u.clients.set(info.client, Date.now());
    render();
  });
  feed.on('leave', (info) => {
    const u = users.get(info.user || info.client);
    if (!u) return;
    u.clients.delete(info.client);
    statusByClient.delete(info.client);
    if (u.clients.size === 0) u.lastSeen = Date.now();
    render();
  });

  if (collabFeed) {
    collabFeed.on('publication', (ev, meta) => {
      const d = ev.data;
      if (!d || typeof d !== 'object' || !meta.info) return;
      if (d.kind === 'status') statusByClient.set(meta.info.client, d.status);
      if (!meta.fromHistory && meta.info.user) {
        const u = users.get(meta.info.user);
        if (u) u.lastActive = Date.now();
      }
      render();
    });
  }
  render();
  setInterval(render, 5000);
  return root;
}
