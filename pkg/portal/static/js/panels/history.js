// History with search by text and date (original design, case 6), through
// GET /history/search with the user's own token: the gateway applies the
// same permission as for subscribing. Newest first; "Older" pages on with
// next_before.

import { h, replace, dateTime } from '../dom.js';
import { unwrap, summary } from '../events.js';
import { panel } from './panel.js';

const PAGE = 20;

export function historyPanel({ channels, token }) {
  const channelInput = h('input', { id: 'history-channel', name: 'channel', list: 'history-channels', value: channels[0], required: true, spellcheck: 'false' });
  const q = h('input', { id: 'history-q', name: 'q', type: 'search', placeholder: 'text, e.g. failed or odoo' });
  const since = h('input', { id: 'history-since', name: 'since', type: 'datetime-local', step: 1 });
  const until = h('input', { id: 'history-until', name: 'until', type: 'datetime-local', step: 1 });
  const button = h('button', { type: 'submit', class: 'primary' }, 'Search');
  const meta = h('p', { class: 'history-meta muted', id: 'history-meta' });
  const rows = h('tbody');
  const more = h('button', { type: 'button', class: 'secondary', hidden: true, onclick: () => run(true) }, 'Older results');
  const table = h('table', { class: 'history-table', id: 'history-results' },
    h('thead', null, h('tr', null, h('th', null, 'Offset'), h('th', null, 'Stored at'), h('th', null, 'Event'))), rows);

  const form = h('form', { class: 'history-form', onsubmit: (e) => { e.preventDefault(); run(false); } },
    h('label', null, 'Channel', channelInput, h('datalist', { id: 'history-channels' }, channels.map((c) => h('option', { value: c })))),
    h('label', null, 'Text', q),
    h('label', null, 'From', since),
    h('label', null, 'Until', until),
    h('div', { class: 'history-actions' }, button,
      h('button', { type: 'button', class: 'secondary', onclick: () => { q.value = ''; since.value = ''; until.value = ''; run(false); } }, 'Clear')));

  const { root } = panel({ id: 'history', title: 'History and search', body: h('div', null, form, meta, h('div', { class: 'table-wrap' }, table), more) });

  let before = 0;
  let shown = 0;
  let seq = 0;
  async function run(older) {
    const my = ++seq;
    if (!older) { before = 0; shown = 0; replace(rows); }
    const params = new URLSearchParams({ channel: channelInput.value.trim(), limit: String(PAGE) });
    if (q.value.trim()) params.set('q', q.value.trim());
    if (since.value) params.set('since', new Date(since.value).toISOString());
    if (until.value) params.set('until', new Date(until.value).toISOString());
    if (older && before) params.set('before', String(before));
    meta.textContent = 'Searching…';
    meta.className = 'history-meta muted';
    more.hidden = true;
    let body;
    let status = 0;
    try {
      const res = await fetch(`/history/search?${params}`, { headers: { Authorization: `Bearer ${await token()}` }, cache: 'no-store' });
      status = res.status;
      body = await res.json().catch(() => ({}));
    } catch (e) {
      body = { error: { code: 0, message: `gateway unreachable (${e.message})` } };
    }
    if (my !== seq) return;
    if (body.error || !body.result) {
      const e = body.error || { code: status, message: 'unexpected reply' };
      const hint = e.code === 103 ? ' — you may not read this channel' : e.code === 101 ? ' — the token was refused' : '';
      meta.textContent = `Refused: ${e.code} ${e.message}${hint}`;
      meta.className = 'history-meta alert error';
      return;
    }
    const r = body.result;
    const channel = params.get('channel');
    for (const p of r.publications || []) {
      const ev = unwrap(p.data);
      const by = p.info ? ` (by ${p.info.connInfo?.name || p.info.conn_info?.name || p.info.user})` : '';
      rows.append(h('tr', { dataset: { offset: p.offset } },
        h('td', { class: 'num' }, p.offset),
        h('td', { class: 'nowrap' }, dateTime(p.time)),
        h('td', null, h('details', null,
          h('summary', null, (ev.type ? `[${ev.type.replace(/^io\.pulse\./, '')}] ` : '') + summary(channel, ev) + by),
          h('pre', { class: 'json' }, JSON.stringify(p.data, null, 2))))));
      shown++;
    }
    before = r.next_before || 0;
    more.hidden = !before;
    let text = `${shown} result${shown === 1 ? '' : 's'} on ${channel}`;
    if (typeof r.scanned === 'number') text += ` · ${r.scanned} stored messages examined`;
    if (r.scan_limit_hit) text += ' · scan limit reached: "Older results" scans on';
    if (shown === 0 && !before) text = `Nothing found on ${channel}`;
    meta.textContent = text;
  }

  // Show the latest events of the first channel straight away.
  queueMicrotask(() => run(false));
  return root;
}
