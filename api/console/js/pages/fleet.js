// Fleet health for team leads: devices online, offline, at risk and faulty; the same by model
// and firmware (a table with bars); the open fleet incidents; and a device list to drill in.

import { api } from '../api.js';
import { field, h, patch, select } from '../dom.js';
import { fmtTime, t, term } from '../i18n.js';
import { errorBanner, pageHeader, priorityBadge, ticketLink } from './common.js';

const COUNTS = [['total', 'fleet.total'], ['online', 'fleet.online'], ['offline', 'fleet.offline'],
  ['at_risk', 'fleet.atRisk'], ['faulty', 'fleet.faulty']];
const HEALTH = ['faulty', 'at_risk', 'online', 'offline', 'unknown'];
const DEVICE_PAGE = 20;

function bar(parts, total, label) {
  return h('div', { class: 'stack', role: 'img', 'aria-label': label },
    parts.filter(([, n]) => n > 0).map(([cls, n, name]) => h('span', {
      class: `seg seg-${cls}`, style: { width: `${(100 * n) / Math.max(total, 1)}%` }, title: `${name}: ${n}`,
    })));
}

export default {
  mount(root, ctx) {
    const banner = errorBanner();
    const asOf = h('p', { class: 'muted', testid: 'fleet-now' });
    const cards = h('div', { class: 'cards', testid: 'fleet-counts' });
    const cohorts = h('div', { class: 'table-wrap', testid: 'fleet-cohorts' });
    const incidents = h('div', { class: 'table-wrap', testid: 'fleet-incidents' });
    const devices = h('div', { class: 'table-wrap', testid: 'fleet-devices' });
    const filter = { health: '', q: '', model: '', firmware: '', page: 1 };
    const cohortNote = h('span', { class: 'muted' });

    const healthSelect = select([['', t('app.any')], ...HEALTH.map((x) => [x, term('health', x)])], '', {
      testid: 'device-health', onchange: (e) => { filter.health = e.target.value; filter.page = 1; loadDevices(); },
    });
    const search = h('input', { type: 'search', testid: 'device-search', maxlength: 200 });
    const deviceForm = h('form', { class: 'filters', onsubmit: (e) => { e.preventDefault(); filter.q = search.value.trim(); filter.page = 1; loadDevices(); } },
      field(t('fleet.health'), healthSelect),
      field(t('fleet.searchId'), search),
      h('button', { type: 'submit', class: 'secondary', testid: 'device-search-submit' }, t('fleet.searchButton')),
      h('button', { type: 'button', class: 'secondary', onclick: () => {
        Object.assign(filter, { health: '', q: '', model: '', firmware: '', page: 1 });
        healthSelect.value = '';
        search.value = '';
        loadDevices();
      } }, t('fleet.allDevices')),
      cohortNote);

    root.append(
      pageHeader(t('fleet.title'), asOf),
      banner.el,
      cards,
      h('section', { class: 'card' }, h('h2', {}, t('fleet.cohorts')), cohorts),
      h('section', { class: 'card' }, h('h2', {}, t('fleet.incidents')), incidents),
      h('section', { class: 'card' }, h('h2', {}, t('fleet.deviceList')), deviceForm, devices));

    function loadDevices() {
      refreshDevices().catch((err) => { if (!ctx.handleError(err)) banner.show(ctx.explain(err)); });
    }

    async function refreshDevices() {
      const page = await api('/devices', { query: {
        health: filter.health, q: filter.q, model: filter.model, firmware: filter.firmware,
        sort: 'health', limit: DEVICE_PAGE, offset: (filter.page - 1) * DEVICE_PAGE,
      } });
      patch(cohortNote, filter.model ? t('fleet.cohortFilter', { model: filter.model, firmware: filter.firmware }) : '');
      const last = Math.max(1, Math.ceil(page.total / DEVICE_PAGE));
      patch(devices,
        page.items.length === 0 ? h('p', { class: 'empty' }, t('fleet.noDevices')) : h('table', {},
          h('thead', {}, h('tr', {}, [t('ticket.device'), t('fleet.model'), t('fleet.firmware'), t('fleet.kind'), t('fleet.state'), t('fleet.health'), t('ticket.lastSeen')]
            .map((c) => h('th', { scope: 'col' }, c)))),
          h('tbody', {}, page.items.map((d) => h('tr', { testid: 'device-row' },
            h('td', {}, d.device_id), h('td', {}, d.model ?? t('app.none')), h('td', {}, d.firmware ?? t('app.none')),
            h('td', {}, term('kind', d.kind)),
            h('td', {}, term('state', d.state)),
            h('td', {}, h('span', { class: `badge health-${d.health}` }, term('health', d.health))),
            h('td', {}, fmtTime(d.last_seen)))))),
        h('div', { class: 'pager' },
          h('button', { type: 'button', class: 'secondary', disabled: filter.page <= 1, 'data-focus-key': 'dev-prev',
            onclick: () => { filter.page -= 1; loadDevices(); } }, t('queue.prev')),
          h('span', {}, t('queue.count', { from: page.total ? page.offset + 1 : 0, to: page.offset + page.items.length, total: page.total })),
          h('button', { type: 'button', class: 'secondary', disabled: filter.page >= last, 'data-focus-key': 'dev-next',
            onclick: () => { filter.page += 1; loadDevices(); } }, t('queue.next'))));
    }

    async function refresh() {
      const data = await api('/fleet/health');
      banner.clear();
      patch(asOf, t('fleet.asOf', { time: fmtTime(data.now, { seconds: true }) }));
      patch(cards, COUNTS.map(([key, label]) => h('div', { class: `stat stat-${key}`, testid: `fleet-${key}` },
        h('span', { class: 'stat-value' }, String(data.devices[key])),
        h('span', { class: 'stat-label' }, t(label)),
        key === 'at_risk' ? h('small', { class: 'muted' }, t('fleet.atRiskHelp')) : null,
        key === 'faulty' ? h('small', { class: 'muted' }, t('fleet.faultyHelp')) : null)));
      patch(cohorts, data.by_cohort.length === 0 ? h('p', { class: 'empty' }, t('fleet.noDevices')) : h('table', {},
        h('caption', { class: 'visually-hidden' }, t('fleet.cohortsCaption')),
        h('thead', {}, h('tr', {}, [t('fleet.model'), t('fleet.firmware'), t('fleet.kind'), t('fleet.total'), t('fleet.online'),
          t('fleet.offline'), t('fleet.atRisk'), t('fleet.faulty'), t('fleet.share')].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, data.by_cohort.map((c) => {
          const healthy = Math.max(0, c.total - c.faulty - c.at_risk);
          return h('tr', { testid: 'cohort-row', class: 'clickable',
            onclick: () => { Object.assign(filter, { model: c.model, firmware: c.firmware, page: 1 }); loadDevices(); } },
          h('td', {}, h('button', { type: 'button', class: 'link', 'data-focus-key': `cohort-${c.model}-${c.firmware}` }, c.model)),
          h('td', {}, c.firmware), h('td', {}, term('kind', c.kind)),
          h('td', { class: 'num' }, String(c.total)), h('td', { class: 'num' }, String(c.online)),
          h('td', { class: 'num' }, String(c.offline)), h('td', { class: 'num' }, String(c.at_risk)),
          h('td', { class: 'num' }, String(c.faulty)),
          h('td', { class: 'bar-cell' },
            bar([['faulty', c.faulty, t('fleet.faulty')], ['at_risk', c.at_risk, t('fleet.atRisk')], ['healthy', healthy, t('fleet.online')]],
              c.total, `${t('fleet.faulty')} ${c.faulty}, ${t('fleet.atRisk')} ${c.at_risk}, ${c.total}`),
            bar([['online', c.online, t('fleet.online')], ['offline', c.offline, t('fleet.offline')]],
              c.total, `${t('fleet.online')} ${c.online}, ${t('fleet.offline')} ${c.offline}`)));
        }))));
      patch(incidents, data.fleet_incidents.length === 0 ? h('p', { class: 'empty', testid: 'no-fleet-incidents' }, t('fleet.noIncidents')) : h('table', {},
        h('thead', {}, h('tr', {}, [t('fleet.incident'), t('fleet.model'), t('fleet.firmware'), t('fleet.fault'),
          t('fleet.devices'), t('fleet.priority'), t('fleet.opened'), t('fleet.ticket')].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, data.fleet_incidents.map((f) => h('tr', { testid: 'fleet-incident' },
          h('td', {}, `#${f.fleet_incident_id}`), h('td', {}, f.model ?? t('app.none')), h('td', {}, f.firmware ?? t('app.none')),
          h('td', {}, term('fault', f.fault)), h('td', { class: 'num' }, String(f.devices)),
          h('td', {}, priorityBadge(f.priority)), h('td', {}, fmtTime(f.opened_at)),
          h('td', {}, f.ticket_id ? ticketLink(f.ticket_id) : t('app.none')))))));
      await refreshDevices();
    }

    return { refresh, destroy() {}, showError: banner.show };
  },
};
