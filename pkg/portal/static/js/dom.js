// DOM and formatting helpers. Event payloads come from workers and other
// users, so text is always set as text (never innerHTML).

/** h builds an element: h('div', {class: 'x', onclick: fn}, 'text', child). */
export function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'style') Object.assign(el.style, v);
    else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'value' || k === 'checked' || k === 'disabled' || k === 'selected') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c == null || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
}

/** replace swaps an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

/**
 * batched runs fn once after the current task however often it is called
 * meanwhile: a burst of publications (a recovery delivers them in one go)
 * renders once. A microtask rather than requestAnimationFrame, which stalls
 * in tabs the browser does not paint, so every open tab stays current.
 */
export function batched(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    queueMicrotask(() => { queued = false; fn(); });
  };
}

export function clock(t) {
  const d = toDate(t);
  return d ? d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' }) : '';
}

export function dateTime(t) {
  const d = toDate(t);
  return d ? d.toLocaleString([], { dateStyle: 'short', timeStyle: 'medium' }) : '';
}

export function timeAgo(t, now = Date.now()) {
  const d = toDate(t);
  if (!d) return '';
  const s = Math.round((now - d.getTime()) / 1000);
  // Simulated clocks (billing-sim -speed) stamp events days ahead: say when.
  if (s < -60) return d.toLocaleString([], { dateStyle: 'medium', timeStyle: 'short' });
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const hr = Math.floor(m / 60);
  if (hr < 24) return `${hr} h ago`;
  return d.toLocaleDateString();
}

function toDate(t) {
  if (t == null || t === '') return null;
  const d = t instanceof Date ? t : new Date(t);
  return Number.isNaN(d.getTime()) ? null : d;
}

/** money formats an integer amount of a currency's minor unit. */
export function money(minor, currency) {
  if (typeof minor !== 'number' || !currency) return '';
  try {
    const fmt = new Intl.NumberFormat(undefined, { style: 'currency', currency });
    const digits = fmt.resolvedOptions().maximumFractionDigits;
    return fmt.format(minor / 10 ** digits);
  } catch {
    return `${(minor / 100).toFixed(2)} ${currency}`;
  }
}

export function bytesPerSecond(n) {
  if (typeof n !== 'number') return '';
  const units = ['B/s', 'KB/s', 'MB/s', 'GB/s'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++; }
  return `${n.toFixed(n < 10 && i > 0 ? 1 : 0)} ${units[i]}`;
}

export function initials(name) {
  const parts = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const letters = parts.length > 1 ? parts[0][0] + parts[parts.length - 1][0] : (parts[0] || '?').slice(0, 2);
  return letters.toUpperCase();
}

/** colorFor gives each user a stable colour. */
export function colorFor(key) {
  let hash = 0;
  for (const ch of String(key)) hash = (hash * 31 + ch.codePointAt(0)) >>> 0;
  return `hsl(${hash % 360} 62% 46%)`;
}

export function avatar(name, key, status) {
  return h('span', { class: 'avatar', style: { background: colorFor(key || name) }, title: name, 'aria-hidden': 'true' },
    initials(name), status ? h('span', { class: `avatar-dot ${status}` }) : null);
}
