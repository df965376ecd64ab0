// The registry for integration and admin keys: owners (with their accounts, language, time
// zone and devices) and the messages the ingester refused, counted by reason.

import { api } from '../api.js';
import { field, h, patch, select } from '../dom.js';
import { fmtTime, t, term } from '../i18n.js';
import { errorBanner, pageHeader } from './common.js';

const OWNER_PAGE = 20;

export default {
  mount(root, ctx) {
    const banner = errorBanner();
    const owners = h('div', { class: 'table-wrap', testid: 'owners' });
    const dead = h('div', { class: 'table-wrap', testid: 'dead-letters' });
    const filter = { q: '', account: '', page: 1 };
    const search = h('input', { type: 'search', testid: 'owner-search', maxlength: 200 });
    const account = select([['', t('app.any')], ['consumer', term('account', 'consumer')],
      ['enterprise', term('account', 'enterprise')]], '', {
      testid: 'owner-account', onchange: (e) => { filter.account = e.target.value; filter.page = 1; load(); },
    });
    const form = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); filter.q = search.value.trim(); filter.page = 1; load(); } },
      field(t('registry.search'), search), field(t('registry.account'), account),
      h('button', { type: 'submit', class: 'secondary', testid: 'owner-search-submit' }, t('fleet.searchButton')));

    root.append(
      pageHeader(t('registry.title'), h('p', { class: 'muted' }, t('registry.help'))),
      banner.el,
      h('section', { class: 'card' }, h('h2', {}, t('registry.owners')), form, owners),
      h('section', { class: 'card' }, h('h2', {}, t('registry.deadLetters')), dead));

    function load() {
      refresh().catch((err) => { if (!ctx.handleError(err)) banner.show(ctx.explain(err)); });
    }

    async function refresh() {
      const [page, letters] = await Promise.all([
        api('/owners', { query: { q: filter.q, account_type: filter.account, limit: OWNER_PAGE,
          offset: (filter.page - 1) * OWNER_PAGE } }),
        api('/dead-letters', { query: { limit: 10 } }),
      ]);
      banner.clear();
      const last = Math.max(1, Math.ceil(page.total / OWNER_PAGE));
      patch(owners,
        page.items.length === 0 ? h('p', { class: 'empty' }, t('registry.noOwners')) : h('table', {},
          h('thead', {}, h('tr', {}, [t('registry.owner'), t('registry.name'), t('registry.account'),
            t('registry.enterprise'), t('registry.contactPerson'), t('registry.language'), t('registry.timeZone'),
            t('registry.quiet'), t('registry.devices')].map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((o) => h('tr', { testid: 'owner-row' },
            h('td', {}, o.owner_id), h('td', {}, o.name), h('td', {}, term('account', o.account_type)),
            h('td', {}, o.enterprise_account ? `${o.enterprise_account}${o.enterprise_team ? ` · ${o.enterprise_team}` : ''}` : t('app.none')),
            h('td', {}, [o.contact_person, o.department].filter(Boolean).join(' · ') || t('app.none')),
            h('td', {}, term('locale', o.locale)), h('td', {}, o.time_zone),
            h('td', {}, o.quiet_start ? `${o.quiet_start}–${o.quiet_end}` : t('app.none')),
            h('td', { class: 'num' }, String(o.devices ?? 0)))))),
        h('div', { class: 'pager' },
          h('button', { type: 'button', class: 'secondary', disabled: filter.page <= 1, 'data-focus-key': 'own-prev',
            onclick: () => { filter.page -= 1; load(); } }, t('queue.prev')),
          h('span', {}, t('queue.count', { from: page.total ? page.offset + 1 : 0, to: page.offset + page.items.length, total: page.total })),
          h('button', { type: 'button', class: 'secondary', disabled: filter.page >= last, 'data-focus-key': 'own-next',
            onclick: () => { filter.page += 1; load(); } }, t('queue.next'))));
      const kinds = Object.entries(letters.by_reason).sort((a, b) => b[1] - a[1]);
      patch(dead, letters.total === 0 ? h('p', { class: 'empty', testid: 'no-dead-letters' }, t('registry.noDeadLetters')) : [
        h('ul', { class: 'counts', testid: 'dead-letter-kinds' }, kinds.map(([kind, n]) =>
          h('li', {}, h('strong', {}, String(n)), ' ', kind))),
        h('table', {},
          h('thead', {}, h('tr', {}, [t('registry.received'), t('registry.topic'), t('registry.reason'), t('registry.size')]
            .map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, letters.items.map((d) => h('tr', { testid: 'dead-letter' },
            h('td', {}, fmtTime(d.received_at)), h('td', {}, h('code', {}, d.topic)), h('td', {}, d.reason),
            h('td', { class: 'num' }, String(d.payload_bytes ?? '')))))),
      ]);
    }

    return { refresh, destroy() {}, showError: banner.show };
  },
};
