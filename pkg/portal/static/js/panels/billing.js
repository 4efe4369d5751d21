// Billing notifications (original design, case 2) and, for the platform
// team, admin:billing:alerts: newest first, unread until marked read.

import { h, replace, batched, money, timeAgo, dateTime } from '../dom.js';
import { eventTime, typeTail } from '../events.js';
import { panel, feedState } from './panel.js';

const KEEP = 50; // newest first, in a scrolling list

const TYPE_LABEL = {
  invoice: 'Invoice', payment: 'Payment', plan_change: 'Plan', usage_alert: 'Usage',
  subscription: 'Subscription', alert: 'Alert',
};

const BAD = new Set(['failed', 'overdue', 'exceeded', 'critical', 'past_due', 'suspended', 'cancelled', 'void']);
const GOOD = new Set(['succeeded', 'paid', 'active', 'upgraded', 'resolved']);

/**
 * billingPanel lists notifications of one channel. admin: true shows the
 * tenant of each (admin:billing:alerts spans tenants).
 */
export function billingPanel(conn, { id, title, channel, admin = false }) {
  const items = [];
  const list = h('ul', { class: 'notes' });
  const unread = h('span', { class: 'unread', hidden: true });
  const markRead = h('button', { class: 'link', type: 'button', hidden: true, onclick: () => { items.forEach((i) => { i.read = true; }); render(); } }, 'Mark all read');
  const { root, setState } = panel({ id, title, channel, extra: [unread, markRead], body: list });

  const render = batched(() => {
    const n = items.filter((i) => !i.read).length;
    unread.hidden = n === 0;
    markRead.hidden = n === 0;
    unread.textContent = `${n} new`;
    if (items.length === 0) {
      replace(list, h('li', { class: 'empty' }, `No notifications yet on ${channel}`));
      return;
    }
    replace(list, items.map(note));
  });

  function note(i) {
    const d = i.data;
    const kind = d.type || d.kind || typeTail(i.type) || 'event';
    const status = d.status || d.severity || '';
    const tone = BAD.has(status) || status === 'critical' ? 'bad' : GOOD.has(status) ? 'good' : 'info';
    return h('li', { class: `note ${tone}${i.read ? ' read' : ''}`, dataset: { offset: i.offset, tenant: d.tenantId || '' }, onclick: () => { i.read = true; render(); } },
      h('div', { class: 'note-head' },
        h('span', { class: `pill ${tone}` }, TYPE_LABEL[kind] || kind.replace(/_/g, ' ')),
        status ? h('span', { class: 'note-status' }, status.replace(/_/g, ' ')) : null,
        admin && d.tenantId ? h('span', { class: 'note-tenant' }, d.tenantId) : null,
        h('span', { class: 'spacer' }),
        typeof d.amount === 'number' && d.amount !== 0 ? h('span', { class: 'amount' }, money(d.amount, d.currency)) : null),
      h('p', { class: 'note-msg' }, d.message || JSON.stringify(d)),
      h('time', { class: 'muted', datetime: i.time, title: dateTime(i.time) }, timeAgo(i.time)),
      i.read ? null : h('span', { class: 'dot', title: 'unread' }));
  }

  const feed = conn.feed(channel, { history: 20 });
  feed.on('state', (s) => setState(feedState(s)));
  feed.on('reset', () => { items.length = 0; render(); });
  feed.on('publication', (ev, meta) => {
    if (!ev.data || typeof ev.data !== 'object') return;
    items.unshift({ data: ev.data, type: ev.type, time: eventTime(ev), offset: meta.offset, read: meta.fromHistory });
    if (items.length > KEEP) items.length = KEEP;
    render();
  });
  render();
  setInterval(render, 10000);
  return root;
}
