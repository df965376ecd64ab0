// The ticket queue: open tickets by SLA urgency (the API's sort=urgency), time left, colours
// for near-breach and breached, filters and paging kept in the URL.

import { api } from '../api.js';
import { field, h, patch, select } from '../dom.js';
import { fmtTime, t, term } from '../i18n.js';
import { errorBanner, pageHeader, priorityBadge, stateBadge, ticketLink, urgencyBadge } from './common.js';

const PAGE_SIZE = 25;
const STATES = ['open', 'all', 'callback', 'new', 'acknowledged', 'in_progress', 'waiting', 'resolved', 'closed'];
const PRIORITIES = ['critical', 'major', 'minor'];
const TIERS = ['L1', 'L2', 'L3'];

export default {
  mount(root, ctx) {
    const filters = {
      state: STATES.includes(ctx.query.get('state')) ? ctx.query.get('state') : 'open',
      priority: PRIORITIES.includes(ctx.query.get('priority')) ? ctx.query.get('priority') : '',
      tier: TIERS.includes(ctx.query.get('tier')) ? ctx.query.get('tier') : '',
      page: Math.max(1, Number(ctx.query.get('page')) || 1),
    };
    const asOf = h('p', { class: 'muted', testid: 'queue-now' });
    const banner = errorBanner();
    const results = h('div', { class: 'table-wrap', testid: 'queue' }, h('p', { class: 'muted' }, t('app.loading')));
    const pager = h('div', { class: 'pager' });

    const stateOptions = STATES.map((s) => [s, ['open', 'all', 'callback'].includes(s) ? t(`queue.state.${s}`) : term('state', s)]);
    const any = [['', t('app.any')]];
    const controls = [
      ['state', t('queue.state'), stateOptions],
      ['priority', t('queue.priority'), any.concat(PRIORITIES.map((p) => [p, term('priority', p)]))],
      ['tier', t('queue.tier'), any.concat(TIERS.map((x) => [x, term('tier', x)]))],
    ].map(([name, label, options]) => field(label, select(options, filters[name], {
      name, testid: `filter-${name}`,
      onchange: (e) => {
        filters[name] = e.target.value;
        filters.page = 1;
        load();
      },
    })));
    const form = h('form', { class: 'filters', 'aria-label': t('queue.filters'), onsubmit: (e) => e.preventDefault() }, controls);

    const make = ctx.can('act_tickets')
      ? h('a', { href: '#/tickets/new', class: 'button-link', testid: 'new-ticket-link' }, `+ ${t('new.title')}`)
      : null;
    root.append(pageHeader(t('queue.title'), asOf, make), form, banner.el, results, pager);

    function load() {
      ctx.setQuery({ state: filters.state === 'open' ? '' : filters.state, priority: filters.priority,
        tier: filters.tier, page: filters.page > 1 ? filters.page : '' });
      refresh().catch((err) => {
        if (!ctx.handleError(err)) banner.show(ctx.explain(err));
      });
    }

    function row(item) {
      const open = () => ctx.navigate(`#/tickets/${item.ticket_id}`);
      const device = item.kind === 'fleet'
        ? h('span', {}, `${item.model ?? ''} ${item.firmware ?? ''} `, h('small', { class: 'muted' }, t('queue.fleetDevices')))
        : h('span', {}, item.device_id ?? t('app.none'), item.model ? h('small', { class: 'muted' }, ` ${item.model} ${item.firmware ?? ''}`) : null);
      return h('tr', {
        class: `clickable urgency-row-${item.urgency}`, testid: 'queue-row',
        dataset: { ticketId: item.ticket_id, urgency: item.urgency },
        onclick: (e) => { if (!e.target.closest('a')) open(); },
      },
      h('td', {}, urgencyBadge(item)),
      h('td', {}, ticketLink(item.ticket_id)),
      h('td', {}, priorityBadge(item.priority)),
      h('td', {}, term('tier', item.tier)),
      h('td', {}, item.team),
      h('td', {}, stateBadge(item.state)),
      h('td', {}, device),
      h('td', {}, term('fault', item.fault)),
      h('td', {}, item.customer_id ?? t('app.none'), item.segment ? h('small', { class: 'muted' }, ` ${term('segment', item.segment)}`) : null),
      h('td', {}, fmtTime(item.opened_at)),
      h('td', {}, item.assignee ?? t('app.none')));
    }

    async function refresh() {
      const data = await api('/tickets', {
        query: {
          sort: 'urgency', state: filters.state, priority: filters.priority, tier: filters.tier,
          limit: PAGE_SIZE, offset: (filters.page - 1) * PAGE_SIZE,
        },
      });
      banner.clear();
      patch(asOf, t('queue.asOf', { time: fmtTime(data.now, { seconds: true }) }));
      const columns = ['left', 'id', 'priority', 'tier', 'team', 'state', 'device', 'fault', 'customer', 'opened', 'assignee']
        .map((c) => t(`queue.col.${c}`));
      patch(results, data.items.length === 0
        ? h('p', { class: 'empty', testid: 'queue-empty' }, t('queue.empty'))
        : h('table', { class: 'queue' },
          h('caption', { class: 'visually-hidden' }, t('queue.caption')),
          h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, data.items.map(row))));
      const from = data.total === 0 ? 0 : data.offset + 1;
      const to = data.offset + data.items.length;
      const last = Math.max(1, Math.ceil(data.total / PAGE_SIZE));
      patch(pager,
        h('button', { type: 'button', class: 'secondary', testid: 'page-prev', 'data-focus-key': 'prev',
          disabled: filters.page <= 1, onclick: () => { filters.page -= 1; load(); } }, t('queue.prev')),
        h('span', { testid: 'page-count' }, t('queue.count', { from, to, total: data.total })),
        h('button', { type: 'button', class: 'secondary', testid: 'page-next', 'data-focus-key': 'next',
          disabled: filters.page >= last, onclick: () => { filters.page += 1; load(); } }, t('queue.next')));
    }

    return { refresh, destroy() {}, showError: banner.show };
  },
};
