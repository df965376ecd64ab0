// "New ticket": an agent writes down a problem that came in by phone, e-mail or chat, as the
// standard's intake lists it (customer or device, contact person, department, symptom,
// trigger, scope, type and priority); POST /tickets makes it and the page opens it.

import { api } from '../api.js';
import { field, h, select } from '../dom.js';
import { t, term } from '../i18n.js';
import { errorBanner, pageHeader } from './common.js';

const TYPES = ['fault', 'question', 'complaint', 'warranty'];
const PRIORITIES = ['minor', 'major', 'critical'];
const CHANNELS = ['phone', 'email', 'form', 'chat', 'other'];

export default {
  mount(root, ctx) {
    const banner = errorBanner();
    if (!ctx.can('act_tickets')) {
      root.append(pageHeader(t('new.title')),
        h('p', { class: 'muted', testid: 'new-read-only' }, t('actions.readOnly', { role: term('role', ctx.me.role) })));
      return { refresh: async () => {}, destroy() {}, showError: banner.show };
    }
    const input = (name, attrs = {}) => h('input', { type: 'text', maxlength: 200, testid: `new-${name}`, ...attrs });
    const owner = input('owner');
    const device = input('device');
    const type = select(TYPES.map((x) => [x, term('ticketType', x)]), 'fault', { testid: 'new-type' });
    const priority = select(PRIORITIES.map((p) => [p, term('priority', p)]), 'minor', { testid: 'new-priority' });
    const channel = select(CHANNELS.map((c) => [c, term('channel', c)]), 'phone', { testid: 'new-channel' });
    const symptom = h('textarea', { rows: 3, maxlength: 2000, required: true, testid: 'new-symptom' });
    const trigger = h('textarea', { rows: 2, maxlength: 2000, testid: 'new-trigger' });
    const scope = input('scope', { maxlength: 500 });
    const person = input('contact-person');
    const department = input('department');
    const status = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite', testid: 'new-status' });
    const complaintNote = h('p', { class: 'muted', testid: 'new-complaint-note', hidden: true }, t('new.complaintClock'));
    type.addEventListener('change', () => { complaintNote.hidden = type.value !== 'complaint'; });
    const submit = h('button', { type: 'submit', testid: 'new-submit' }, t('new.submit'));

    const text = (el) => el.value.trim() || null;
    async function send(e) {
      e.preventDefault();
      if (!text(owner) && !text(device)) {
        status.className = 'form-status error';
        status.textContent = t('new.needSomeone');
        return;
      }
      submit.disabled = true;
      status.className = 'form-status';
      status.textContent = t('actions.working');
      try {
        const made = await api('/tickets', {
          method: 'POST',
          body: {
            owner_id: text(owner), device_id: text(device), type: type.value, priority: priority.value,
            symptom: symptom.value.trim(), trigger: text(trigger), scope: text(scope),
            contact_person: text(person), department: text(department), channel: channel.value,
          },
        });
        ctx.toast(t('new.made', { id: made.ticket_id }), 'success');
        ctx.navigate(`#/tickets/${made.ticket_id}`);
      } catch (err) {
        if (ctx.handleError(err)) return;
        status.className = 'form-status error';
        status.textContent = t('new.failed', { detail: ctx.explain(err) });
      } finally {
        submit.disabled = false;
      }
    }

    root.append(
      pageHeader(t('new.title'), h('p', { class: 'muted' }, t('new.help'))),
      banner.el,
      h('form', { class: 'card new-ticket', testid: 'new-ticket', onsubmit: send },
        h('fieldset', {}, h('legend', {}, t('new.customer')),
          field(t('new.owner'), owner), field(t('new.device'), device, t('new.deviceHelp')),
          field(t('new.contactPerson'), person, t('new.fromRecord')), field(t('new.department'), department, t('new.fromRecord'))),
        h('fieldset', {}, h('legend', {}, t('new.problem')),
          field(t('new.type'), type), complaintNote, field(t('new.priority'), priority), field(t('new.channel'), channel),
          field(t('new.symptom'), symptom), field(t('new.trigger'), trigger), field(t('new.scope'), scope)),
        h('div', { class: 'button-row' }, submit), status));
    return { refresh: async () => {}, destroy() {}, showError: banner.show };
  },
};
