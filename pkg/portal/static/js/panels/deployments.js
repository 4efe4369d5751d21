// Live deployments: the latest state per deployment with a progress bar,
// the current step and the log lines seen so far (original design, case 1).

import { h, replace, batched, clock, timeAgo } from '../dom.js';
import { eventTime, typeTail } from '../events.js';
import { panel, feedState } from './panel.js';

const FINISHED = new Set(['completed', 'failed', 'rolled_back']);
const SHOWN = 6;
const LOG_LINES = 40;

const STATUS_LABEL = {
  queued: 'Queued', starting: 'Starting', started: 'Started', in_progress: 'In progress',
  completed: 'Completed', failed: 'Failed', rolled_back: 'Rolled back',
};

export function deploymentsPanel(conn, tenant) {
  const channel = `tenant:${tenant}:deployments`;
  const deployments = new Map();
  const list = h('div', { class: 'deploy-list' });
  const counts = h('span', { class: 'muted' });
  const { root, setState } = panel({ id: 'deployments', title: 'Deployments', channel, extra: counts, body: list });
  let foreign = 0;

  const render = batched(() => {
    const all = [...deployments.values()].sort((a, b) =>
      (FINISHED.has(a.status) - FINISHED.has(b.status)) || (b.offset - a.offset));
    const running = all.filter((d) => !FINISHED.has(d.status)).length;
    const done = all.filter((d) => d.status === 'completed').length;
    const failed = all.filter((d) => d.status === 'failed' || d.status === 'rolled_back').length;
    counts.textContent = `${running} running · ${done} completed · ${failed} failed`;
    if (all.length === 0) {
      replace(list, h('p', { class: 'empty' }, `Waiting for deployments on ${channel}…`));
      return;
    }
    replace(list,
      foreign > 0 ? h('p', { class: 'alert error', role: 'alert' }, `${foreign} event(s) of another tenant arrived on ${channel}: tenant isolation is broken.`) : null,
      all.slice(0, SHOWN).map(card),
      all.length > SHOWN ? h('p', { class: 'muted more' }, `and ${all.length - SHOWN} older deployments (see History)`) : null);
  });

  const feed = conn.feed(channel, { history: 100 });
  feed.on('state', (s) => setState(feedState(s)));
  feed.on('reset', () => { deployments.clear(); render(); });
  feed.on('publication', (ev, meta) => {
    const d = ev.data;
    if (!d || typeof d !== 'object' || !d.deploymentId) return;
    if (d.tenantId && d.tenantId !== tenant) {
      foreign++;
      console.error('event of another tenant on', channel, d);
      render();
      return;
    }
    let dep = deployments.get(d.deploymentId);
    if (!dep) {
      dep = { id: d.deploymentId, logs: [], started: eventTime(ev) };
      deployments.set(d.deploymentId, dep);
    }
    Object.assign(dep, {
      tenant: d.tenantId || tenant,
      type: d.instanceType || dep.type || '',
      version: d.version || dep.version || '',
      status: d.status || typeTail(ev.type) || dep.status,
      phase: typeTail(ev.type), // queued/started tell apart what status calls "starting"
      progress: typeof d.progress === 'number' ? d.progress : dep.progress || 0,
      step: d.currentStep || dep.step || '',
      eta: d.estimatedCompletion || '',
      url: d.url || dep.url || '',
      reason: d.reason || dep.reason || '',
      node: d.node || dep.node || '',
      updated: eventTime(ev),
      offset: meta.offset,
    });
    if (Array.isArray(d.logs)) {
      for (const line of d.logs) dep.logs.push({ t: eventTime(ev), line: String(line) });
      if (dep.logs.length > LOG_LINES) dep.logs.splice(0, dep.logs.length - LOG_LINES);
    }
    render();
  });
  render();
  setInterval(render, 5000); // keeps ETAs and "ago" current
  return root;
}

function card(d) {
  const finished = FINISHED.has(d.status);
  const bad = d.status === 'failed' || d.status === 'rolled_back';
  const eta = !finished && d.eta ? Math.round((new Date(d.eta).getTime() - Date.now()) / 1000) : null;
  const logs = h('pre', { class: 'logs' }, d.logs.slice(-4).map((l) => h('div', null, h('span', { class: 'log-time' }, clock(l.t)), ' ', l.line)));
  return h('article', {
    class: `deploy ${d.status}${finished ? ' finished' : ''}`,
    dataset: { deploymentId: d.id, tenant: d.tenant, status: d.status },
  },
  h('header', null,
    h('div', null,
      h('strong', { class: 'deploy-type' }, d.type || 'deployment', d.version ? ` ${d.version}` : ''),
      h('span', { class: 'deploy-id' }, d.id)),
    h('span', { class: `badge ${bad ? 'bad' : d.status === 'completed' ? 'good' : 'info'}` },
      STATUS_LABEL[d.status === 'starting' && STATUS_LABEL[d.phase] ? d.phase : d.status] || d.status)),
  h('div', { class: 'progress-row' },
    h('div', {
      class: `progress${bad ? ' bad' : d.status === 'completed' ? ' good' : ''}`,
      role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': d.progress,
      'aria-label': `${d.id} progress`,
    }, h('div', { class: 'bar', style: { width: `${Math.max(0, Math.min(100, d.progress))}%` } })),
    h('span', { class: 'pct' }, `${d.progress}%`)),
  h('div', { class: 'step' },
    h('span', { class: 'step-name' }, d.step),
    eta !== null && eta > 0 ? h('span', { class: 'muted' }, ` · about ${eta < 90 ? `${eta} s` : `${Math.round(eta / 60)} min`} left`) : null,
    finished ? h('span', { class: 'muted' }, ` · ${timeAgo(d.updated)}`) : null),
  d.reason ? h('p', { class: 'reason' }, d.reason) : null,
  d.url ? h('p', { class: 'url' }, h('a', { href: d.url, target: '_blank', rel: 'noopener' }, d.url)) : null,
  d.logs.length ? logs : null);
}
