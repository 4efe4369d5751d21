// What the portal understands of event payloads. Workers publish either a
// CloudEvents 1.0 envelope (specversion, type, time, data) or, before the
// envelope landed, the flat object itself: both are accepted everywhere.

import { money } from './dom.js';

/**
 * unwrap returns {data, type, time, id} for a publication's payload: the
 * envelope's data and attributes when it is one, else the payload itself.
 */
export function unwrap(payload) {
  if (payload && typeof payload === 'object' && !Array.isArray(payload) &&
      'specversion' in payload && 'data' in payload) {
    return { data: payload.data ?? {}, type: payload.type || '', time: payload.time || '', id: payload.id || '' };
  }
  return { data: payload ?? {}, type: '', time: '', id: '' };
}

/** eventTime is when the event happened, as the producer says, else fallback. */
export function eventTime(ev, fallback) {
  const d = ev.data && typeof ev.data === 'object' ? ev.data : {};
  return d.timestamp || ev.time || fallback || '';
}

/** typeTail is the last part of a CloudEvents type: io.pulse.deployment.failed → failed. */
export function typeTail(type) {
  return type ? type.slice(type.lastIndexOf('.') + 1) : '';
}

/** resource is the last part of a channel name: tenant:acme:billing → billing. */
export function resource(channel) {
  return channel.slice(channel.lastIndexOf(':') + 1);
}

/** summary is a one-line description of an event, for the history view. */
export function summary(channel, ev) {
  const d = ev.data;
  if (d == null || typeof d !== 'object') return String(d);
  if (d.deploymentId) {
    const status = d.status || typeTail(ev.type);
    return [d.instanceType, d.deploymentId, status, d.progress != null ? `${d.progress}%` : '', d.currentStep,
      d.reason || ''].filter(Boolean).join(' · ');
  }
  if (d.kind === 'field') return `${d.field} set to "${d.value}"`;
  if (d.kind === 'focus') return d.field ? `editing ${d.field}` : 'stopped editing';
  if (d.kind === 'status') return `status ${d.status}`;
  if (d.message) {
    const amount = typeof d.amount === 'number' && d.amount !== 0 ? ` (${money(d.amount, d.currency)})` : '';
    const head = [d.type || d.kind || typeTail(ev.type), d.status].filter(Boolean).join(' ');
    return `${head ? `${head}: ` : ''}${d.message}${amount}`;
  }
  if (typeof d.cpu === 'number') return `cpu ${d.cpu}% · memory ${d.memory}% · disk ${d.disk}%`;
  if (d.component) return `${d.component} ${d.status || ''}`;
  const json = JSON.stringify(d);
  return json.length > 160 ? json.slice(0, 157) + '…' : json;
}

/** decodeToken reads a JWT's claims for display only: the gateway verifies it. */
export function decodeToken(token) {
  try {
    const part = token.split('.')[1];
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(part.length / 4) * 4, '='));
    const claims = JSON.parse(decodeURIComponent(escape(json)));
    return claims && typeof claims === 'object' ? claims : null;
  } catch {
    return null;
  }
}

/** grants says whether a channel matches one of the token's patterns ("*" = one part). */
export function grants(patterns, channel) {
  if (!Array.isArray(patterns)) return false;
  const parts = channel.split(':');
  return patterns.some((p) => {
    const pp = String(p).split(':');
    return pp.length === parts.length && pp.every((x, i) => x === '*' || x === parts[i]);
  });
}
