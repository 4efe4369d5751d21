// The card every widget lives in: a title, the channel it reads, and the
// subscription's state (so a refused channel says so where it would show).

import { h } from '../dom.js';

export function panel({ id, title, channel, extra, body, className }) {
  const state = h('span', { class: 'sub-state subscribing', title: 'subscription state' }, 'subscribing…');
  const root = h('section', { id, class: `panel ${className || ''}`, 'aria-labelledby': `${id}-title` },
    h('header', { class: 'panel-head' },
      h('h2', { id: `${id}-title` }, title),
      channel ? h('code', { class: 'channel' }, channel) : null,
      h('span', { class: 'spacer' }),
      extra || null,
      channel ? state : null),
    body);
  return {
    root,
    setState({ cls, text, title: tip }) {
      state.className = `sub-state ${cls}`;
      state.textContent = text;
      state.title = tip || '';
      root.classList.toggle('refused', cls === 'error');
    },
  };
}

/** feedState maps a Feed state to the badge shown in a panel's header. */
export function feedState(s) {
  switch (s.status) {
    case 'subscribed':
      return { cls: 'live', text: 'live' };
    case 'error':
      return { cls: 'error', text: `refused: ${s.code} ${s.message || ''}`.trim(), title: 'the gateway refused this subscription' };
    case 'retrying':
      return { cls: 'warn', text: `retrying (${s.code} ${s.message || ''})`.trim() };
    case 'unsubscribed':
      return { cls: 'off', text: 'not subscribed' };
    default:
      return { cls: 'subscribing', text: 'subscribing…' };
  }
}
