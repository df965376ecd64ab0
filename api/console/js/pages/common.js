// Pieces several pages share: the error banner, badges, links to tickets and devices.

import { h, patch } from '../dom.js';
import { fmtLeft, t, term } from '../i18n.js';

/** A banner for a failed refresh: shown with a message, hidden (empty) again on success. */
export function errorBanner() {
  const el = h('div', { class: 'banner banner-error', role: 'alert', testid: 'page-error', hidden: true });
  return {
    el,
    show(message) {
      el.hidden = false;
      patch(el, h('strong', {}, t('error.title')), ' ', message);
    },
    clear() {
      el.hidden = true;
      el.replaceChildren();
    },
  };
}

export function priorityBadge(priority) {
  return h('span', { class: `badge priority-${priority}`, testid: 'priority' }, term('priority', priority));
}

export function stateBadge(state) {
  return h('span', { class: `badge state-${state}`, testid: 'state' }, term('state', state));
}

export function urgencyBadge(item) {
  // A call-back has no clock of its own: it says what to do instead of the time left.
  const fixed = { done: t('urgency.done'), callback: t('left.callback') }[item.urgency];
  const when = fixed ?? fmtLeft(item.seconds_left);
  const which = !fixed && item.due_kind ? t(`left.${item.due_kind}`) : '';
  return h('span', { class: `left urgency-${item.urgency}`, testid: 'time-left', title: term('urgency', item.urgency) },
    h('span', { class: 'urgency-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'visually-hidden' }, `${term('urgency', item.urgency)}: `),
    when, which ? h('small', {}, ` ${which}`) : null);
}

export function ticketLink(id, text) {
  return h('a', { href: `#/tickets/${id}`, 'data-focus-key': `ticket-${id}` }, text ?? `#${id}`);
}

export function pageHeader(title, ...extra) {
  return h('div', { class: 'page-head' }, h('h1', {}, title), ...extra);
}
