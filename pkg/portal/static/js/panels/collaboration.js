// Collaboration on a settings form: every field change is published by the
// browser itself on tenant:<t>:collaboration (the demo tokens grant it), so
// two users of one tenant see each other's edits live. Who has the form
// open comes from the channel's presence; which field each one is editing
// from focus messages. The form's current values are rebuilt from the
// channel's history when the page opens. Last writer wins per field.

import { h, replace, batched, avatar, colorFor, clock } from '../dom.js';
import { panel, feedState } from './panel.js';

const FORM = 'instance-settings';
const FIELDS = [
  { name: 'instanceName', label: 'Instance name', type: 'text', value: 'erp-production' },
  { name: 'domain', label: 'Custom domain', type: 'text', value: 'erp.example.com' },
  { name: 'plan', label: 'Plan', type: 'select', options: ['starter', 'pro', 'business', 'enterprise'], value: 'pro' },
  { name: 'region', label: 'Region', type: 'select', options: ['eu-central', 'eu-west', 'us-east', 'sa-east'], value: 'eu-central' },
  { name: 'backupWindow', label: 'Backup window (UTC)', type: 'time', value: '02:00' },
  { name: 'alertEmail', label: 'Alert e-mail', type: 'email', value: 'ops@example.com' },
  { name: 'maintenance', label: 'Maintenance mode', type: 'checkbox', value: false },
];
const TYPING_DEBOUNCE = 150;

export function collaborationPanel(conn, feed, { canPublish, me }) {
  const channel = feed.channel;
  const inputs = new Map();
  const notes = new Map();
  const markers = new Map();
  const editors = new Map(); // client -> {name, user, field}
  const present = new Map(); // client -> {name, user}
  const timers = new Map();
  const who = h('div', { class: 'editors', id: 'collab-editors' });
  const status = h('p', { class: 'collab-status muted' },
    canPublish ? 'Changes are published live to everyone with this form open.'
      : 'Read-only: your token has no publish grant on this channel; you see others\' edits live.');

  const form = h('form', { class: 'settings', autocomplete: 'off', onsubmit: (e) => e.preventDefault() },
    FIELDS.map((f) => {
      let input;
      const common = { id: `field-${f.name}`, name: f.name, disabled: !canPublish, dataset: { field: f.name } };
      if (f.type === 'select') {
        input = h('select', common, f.options.map((o) => h('option', { value: o, selected: o === f.value }, o)));
      } else if (f.type === 'checkbox') {
        input = h('input', { ...common, type: 'checkbox', checked: f.value });
      } else {
        input = h('input', { ...common, type: f.type, value: f.value, spellcheck: 'false' });
      }
      inputs.set(f.name, input);
      const note = h('span', { class: 'field-note' });
      const marker = h('span', { class: 'field-marker' });
      notes.set(f.name, note);
      markers.set(f.name, marker);
      input.addEventListener(f.type === 'text' || f.type === 'email' ? 'input' : 'change', () => changed(f));
      input.addEventListener('focus', () => send({ kind: 'focus', form: FORM, field: f.name }));
      input.addEventListener('blur', () => send({ kind: 'focus', form: FORM, field: null }));
      return h('div', { class: `field field-${f.type}` },
        h('label', { for: common.id }, f.label, marker),
        input,
        note);
    }));

  const { root, setState } = panel({ id: 'collab', title: 'Instance settings — edit together', channel, body: h('div', null, who, form, status) });

  function valueOf(f) {
    const el = inputs.get(f.name);
    return f.type === 'checkbox' ? el.checked : el.value;
  }

  function changed(f) {
    clearTimeout(timers.get(f.name));
    const delay = f.type === 'text' || f.type === 'email' ? TYPING_DEBOUNCE : 0;
    timers.set(f.name, setTimeout(() => send({ kind: 'field', form: FORM, field: f.name, value: valueOf(f) }), delay));
  }

  let refused = false;
  async function send(msg) {
    if (!canPublish || refused) return;
    try {
      await conn.publish(channel, msg);
    } catch (e) {
      if (e && e.code >= 100) {
        refused = true;
        status.textContent = `The gateway refused to publish: ${e.code} ${e.message}. The form is read-only.`;
        status.className = 'collab-status alert error';
        inputs.forEach((el) => { el.disabled = true; });
      }
    }
  }

  function apply(field, value, info, fromHistory) {
    const f = FIELDS.find((x) => x.name === field);
    const el = inputs.get(field);
    if (!f || !el) return;
    const mine = info && info.client === conn.clientId;
    if (!mine && document.activeElement !== el) {
      if (f.type === 'checkbox') el.checked = Boolean(value);
      else el.value = String(value ?? '');
    }
    const by = info?.connInfo?.name || info?.user || 'someone';
    const note = notes.get(field);
    note.textContent = `${mine ? 'you' : by} · ${clock(Date.now())}`;
    if (fromHistory) note.textContent = `last edit by ${info?.user === me.user ? 'you' : by}`;
    note.dataset.by = info?.user || '';
    if (!mine && !fromHistory) {
      el.classList.remove('flash');
      void el.offsetWidth; // restart the animation
      el.style.setProperty('--who', colorFor(info?.user || by));
      el.classList.add('flash');
    }
  }

  const renderEditors = batched(() => {
    for (const [name, marker] of markers) {
      const here = [...editors.values()].filter((e) => e.field === name && present.has(e.client));
      replace(marker, here.map((e) => h('span', { class: 'editing', style: { '--who': colorFor(e.user) }, dataset: { user: e.user } }, avatar(e.name, e.user), `${e.name} is editing`)));
      const input = inputs.get(name);
      input.classList.toggle('remote-focus', here.length > 0);
      if (here.length) input.style.setProperty('--who', colorFor(here[0].user));
    }
    const people = [...present.values()];
    replace(who,
      h('span', { class: 'muted' }, people.length ? 'Open here: ' : 'Nobody else has this form open'),
      people.map((p) => h('span', { class: 'editor', dataset: { user: p.user } }, avatar(p.name, p.user), p.name, p.client === conn.clientId ? ' (you)' : '')));
  });

  feed.on('state', (s) => {
    setState(feedState(s));
    // After a reconnect this tab has a new client id: say again which field it is in.
    if (s.status === 'subscribed') {
      const field = [...inputs.values()].find((el) => el === document.activeElement);
      if (field) send({ kind: 'focus', form: FORM, field: field.name });
    }
  });
  feed.on('publication', (ev, meta) => {
    const d = ev.data;
    if (!d || typeof d !== 'object' || (d.form && d.form !== FORM)) return;
    if (d.kind === 'field') apply(d.field, d.value, meta.info, meta.fromHistory);
    if (d.kind === 'focus' && meta.info && meta.info.client !== conn.clientId && !meta.fromHistory) {
      editors.set(meta.info.client, { client: meta.info.client, user: meta.info.user, name: meta.info.connInfo?.name || meta.info.user, field: d.field });
      renderEditors();
    }
  });
  const nameOf = (info) => info?.connInfo?.name || info?.user || 'anonymous';
  feed.on('presence', (clients) => {
    present.clear();
    for (const info of Object.values(clients)) present.set(info.client, { client: info.client, user: info.user, name: nameOf(info) });
    for (const c of [...editors.keys()]) if (!present.has(c)) editors.delete(c);
    renderEditors();
  });
  feed.on('join', (info) => { present.set(info.client, { client: info.client, user: info.user, name: nameOf(info) }); renderEditors(); });
  feed.on('leave', (info) => { present.delete(info.client); editors.delete(info.client); renderEditors(); });

  // Tell the others when this tab is in the background (presence "away").
  if (canPublish) {
    document.addEventListener('visibilitychange', () => {
      send({ kind: 'status', status: document.visibilityState === 'visible' ? 'online' : 'away' });
    });
  }
  renderEditors();
  return root;
}
