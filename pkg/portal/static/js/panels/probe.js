// Permissions: try to subscribe to (or publish on) any channel and see the
// gateway's answer, e.g. 103 permission denied for another tenant's channel.

import { h, replace } from '../dom.js';
import { panel } from './panel.js';

// What a code means for this page, when the gateway's message is terse.
const HINTS = {
  103: 'this token may not use that channel',
  109: 'the token expired',
};

function refusal(code, reason) {
  const hint = HINTS[code] && (reason || '').length < 40 ? ` — ${HINTS[code]}` : '';
  return `refused with ${code} ${reason || ''}`.trim() + hint;
}

export function probePanel(conn, suggestion) {
  const input = h('input', { id: 'probe-channel', value: suggestion, spellcheck: 'false', 'aria-label': 'channel to try' });
  const out = h('p', { class: 'probe-result muted', id: 'probe-result', role: 'status' }, 'Try a channel this identity may not read.');
  const show = (ok, text) => {
    out.className = `probe-result ${ok ? 'ok' : 'error'}`;
    out.dataset.code = '';
    replace(out, text);
  };
  async function subscribe() {
    const ch = input.value.trim();
    replace(out, `Subscribing to ${ch}…`);
    out.className = 'probe-result muted';
    out.dataset.code = '';
    const r = await conn.probe(ch);
    if (r.ok) show(true, `✓ Subscribed to ${ch}: this identity may read it.`);
    else {
      show(false, `✗ ${ch}: ${refusal(r.code, r.reason)}`);
      out.dataset.code = r.code;
    }
  }
  async function publish() {
    const ch = input.value.trim();
    replace(out, `Publishing on ${ch}…`);
    out.className = 'probe-result muted';
    out.dataset.code = '';
    try {
      await conn.publish(ch, { kind: 'probe', at: new Date().toISOString() });
      show(true, `✓ Published on ${ch}.`);
    } catch (e) {
      show(false, `✗ Publish on ${ch}: ${refusal(e.code, e.message)}`);
      out.dataset.code = e.code;
    }
  }
  const body = h('div', null,
    h('form', { class: 'probe-form', onsubmit: (e) => { e.preventDefault(); subscribe(); } },
      input,
      h('button', { type: 'submit', class: 'secondary', id: 'probe-subscribe' }, 'Subscribe'),
      h('button', { type: 'button', class: 'secondary', id: 'probe-publish', onclick: publish }, 'Publish')),
    out);
  return panel({ id: 'probe', title: 'Permissions', body }).root;
}
