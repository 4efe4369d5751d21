// Metrics dashboard (original design, case 3): cpu, memory and disk of the
// tenant's instances on a uPlot chart, the latest sample as numbers, and the
// monitoring alerts that are firing.

import { h, replace, batched, bytesPerSecond, timeAgo } from '../dom.js';
import { eventTime, typeTail } from '../events.js';
import { panel, feedState } from './panel.js';

const WINDOW_POINTS = 180;
const SERIES = [
  { key: 'cpu', label: 'CPU', color: '#4f46e5' },
  { key: 'memory', label: 'Memory', color: '#0891b2' },
  { key: 'disk', label: 'Disk', color: '#d97706' },
];

export function metricsPanel(conn, tenant) {
  const channel = `tenant:${tenant}:metrics`;
  const alertsChannel = `tenant:${tenant}:monitoring`;
  const points = []; // {t (s), cpu, memory, disk}
  let latest = null;
  const tiles = h('div', { class: 'tiles' });
  const chartBox = h('div', { class: 'chart' });
  const empty = h('p', { class: 'empty chart-empty' }, `Waiting for samples on ${channel}…`);
  const alertList = h('ul', { class: 'alerts' });
  const alertState = h('span', { class: 'sub-state subscribing' }, 'subscribing…');
  const body = h('div', null, tiles, h('div', { class: 'chart-wrap' }, chartBox, empty),
    h('div', { class: 'subhead' }, h('h3', null, 'Monitoring alerts'), h('code', { class: 'channel' }, alertsChannel), h('span', { class: 'spacer' }), alertState),
    alertList);
  const { root, setState } = panel({ id: 'metrics', title: 'Metrics', channel, body });

  let plot = null;
  function ensurePlot() {
    if (plot || !window.uPlot || chartBox.clientWidth === 0) return;
    plot = new window.uPlot({
      width: chartBox.clientWidth,
      height: 200,
      cursor: { drag: { x: false, y: false } },
      legend: { live: false }, // the tiles show the latest values
      scales: { x: { time: true }, y: { range: [0, 100] } },
      axes: [
        {
          stroke: '#6b7280', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e5e7eb' }, space: 70,
          values: (u, splits) => splits.map((t) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' })),
        },
        { stroke: '#6b7280', grid: { stroke: '#eef0f4' }, ticks: { stroke: '#e5e7eb' }, values: (u, v) => v.map((x) => `${x}%`), size: 48 },
      ],
      series: [{}, ...SERIES.map((s) => ({ label: `${s.label} %`, stroke: s.color, width: 2, fill: `${s.color}14` }))],
    }, [[], [], [], []], chartBox);
    new ResizeObserver(() => plot.setSize({ width: chartBox.clientWidth, height: 200 })).observe(chartBox);
  }

  const render = batched(() => {
    ensurePlot();
    empty.hidden = points.length > 0;
    chartBox.classList.toggle('hidden-chart', points.length === 0);
    if (plot) {
      plot.setData([points.map((p) => p.t), ...SERIES.map((s) => points.map((p) => p[s.key]))]);
    }
    if (!latest) {
      replace(tiles);
      return;
    }
    const tile = (label, value, cls) => h('div', { class: `tile ${cls || ''}` }, h('span', { class: 'tile-label' }, label), h('span', { class: 'tile-value' }, value));
    const pct = (v) => (typeof v === 'number' ? `${v.toFixed(1)}%` : '–');
    const level = (v) => (v >= 90 ? 'bad' : v >= 80 ? 'warn' : '');
    replace(tiles,
      tile('CPU', pct(latest.cpu), level(latest.cpu)),
      tile('Memory', pct(latest.memory), level(latest.memory)),
      tile('Disk', pct(latest.disk), level(latest.disk)),
      tile('Requests', typeof latest.requests === 'number' ? `${latest.requests}/s` : '–'),
      tile('Instances', latest.activeInstances ?? '–'),
      tile('Network in / out', latest.networkIn != null ? `${bytesPerSecond(latest.networkIn)} / ${bytesPerSecond(latest.networkOut)}` : '–', 'wide'));
  });

  const feed = conn.feed(channel, { history: WINDOW_POINTS });
  feed.on('state', (s) => setState(feedState(s)));
  feed.on('reset', () => { points.length = 0; latest = null; render(); });
  feed.on('publication', (ev, meta) => {
    const d = ev.data;
    if (!d || typeof d !== 'object' || typeof d.cpu !== 'number') return;
    const when = Date.parse(eventTime(ev)) || Date.now();
    const p = { t: when / 1000, cpu: d.cpu, memory: d.memory, disk: d.disk };
    // Samples arrive in offset order; keep the chart's x sorted anyway.
    let i = points.length;
    while (i > 0 && points[i - 1].t > p.t) i--;
    points.splice(i, 0, p);
    if (points.length > WINDOW_POINTS) points.splice(0, points.length - WINDOW_POINTS);
    if (!latest || p.t >= latest.t) latest = { ...d, t: p.t };
    render();
  });

  // Monitoring alerts: firing until a resolved event with the same alertId.
  const firing = new Map();
  const renderAlerts = batched(() => {
    if (firing.size === 0) {
      replace(alertList, h('li', { class: 'empty' }, 'No firing alerts'));
      return;
    }
    replace(alertList, [...firing.values()].reverse().slice(0, 5).map((a) =>
      h('li', { class: `alert-item ${a.severity === 'critical' ? 'bad' : 'warn'}` },
        h('span', { class: `pill ${a.severity === 'critical' ? 'bad' : 'warn'}` }, a.severity || 'alert'),
        h('span', null, a.message || `${a.resource} at ${a.value}%`),
        h('span', { class: 'muted' }, ` · ${timeAgo(a.startsAt || a.timestamp)}`))));
  });
  const alerts = conn.feed(alertsChannel, { history: 50 });
  alerts.on('state', (s) => {
    const st = feedState(s);
    alertState.className = `sub-state ${st.cls}`;
    alertState.textContent = st.text;
  });
  alerts.on('reset', () => { firing.clear(); renderAlerts(); });
  alerts.on('publication', (ev) => {
    const a = ev.data;
    if (!a || typeof a !== 'object') return;
    const id = a.alertId || `${a.resource}-${a.severity}`;
    const resolved = a.status === 'resolved' || typeTail(ev.type) === 'resolved';
    if (resolved) firing.delete(id);
    else firing.set(id, a);
    renderAlerts();
  });
  renderAlerts();
  render();
  return root;
}
