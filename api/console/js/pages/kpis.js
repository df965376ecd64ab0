// The support KPIs for a period (last 24 h, 7 days or 30 days of business time): each value
// with its target and whether it is met, SLA compliance per priority, and charts over time.

import { api, businessNow } from '../api.js';
import { seconds, timeChart } from '../charts.js';
import { field, h, patch, select } from '../dom.js';
import { fmtDuration, fmtNumber, fmtPercent, fmtTime, t, term } from '../i18n.js';
import { errorBanner, pageHeader, priorityBadge } from './common.js';

const PERIODS = { '24h': 24, '7d': 24 * 7, '30d': 24 * 30 };
// [field of the report, kind]: ratios are shares, means are durations in seconds.
const CARDS = [
  ['first_response', 'mean'],
  ['first_contact_resolution', 'ratio'],
  ['time_to_resolve', 'mean'],
  ['self_service', 'ratio'],
  ['recurrence', 'ratio'],
  ['false_alarms', 'ratio'],
  ['guide_delivery', 'ratio'],
  ['satisfaction', 'average'],
  ['survey_response', 'ratio'],
  ['confirmed_fix', 'ratio'],
  ['onboarding', 'ratio'],
];

function shown(kind, value) {
  if (kind === 'average') return t('ticket.rating', { n: fmtNumber(value, 2) });
  return kind === 'ratio' ? fmtPercent(value, 1) : fmtDuration(value);
}

function targetText(kind, target) {
  if (!target) return t('kpis.noTarget');
  const sign = target.direction === 'at_most' ? '≤' : '≥';
  return t('kpis.target', { target: `${sign} ${shown(kind, target.value)}` });
}

function metBadge(met) {
  if (met == null) return h('span', { class: 'badge met-none', testid: 'kpi-met', dataset: { met: 'none' } }, t('kpis.noData'));
  return h('span', { class: `badge ${met ? 'met-yes' : 'met-no'}`, testid: 'kpi-met', dataset: { met: String(met) } },
    met ? `✓ ${t('kpis.met')}` : `✗ ${t('kpis.notMet')}`);
}

function card(name, kind, k) {
  const sub = kind === 'ratio'
    ? t('kpis.ofRatio', { num: k.numerator, den: k.denominator })
    : kind === 'average' ? t('kpis.ofAverage', { count: k.count })
      : name === 'time_to_resolve' ? t('kpis.resolved', { n: k.count }) : t('kpis.ofMean', { count: k.count });
  return h('div', { class: 'stat kpi', testid: `kpi-${name}`, dataset: { value: k.value ?? '', count: kind === 'ratio' ? k.denominator : k.count } },
    h('span', { class: 'stat-label' }, t(`kpis.${name}`)),
    h('span', { class: 'stat-value', testid: 'kpi-value' }, k.value == null ? t('app.none') : shown(kind, k.value)),
    h('span', { class: 'kpi-target' }, targetText(kind, k.target), ' ', k.target ? metBadge(k.meets_target) : null),
    h('small', { class: 'muted' }, sub, k.pending ? ` · ${t('kpis.pending', { n: k.pending })}` : ''));
}

function ratioCell(r) {
  return h('td', { class: 'num' }, r.value == null ? t('app.none') : fmtPercent(r.value, 1),
    h('small', { class: 'muted' }, ` (${t('kpis.ofRatio', { num: r.numerator, den: r.denominator })})`));
}

export default {
  mount(root, ctx) {
    const period = PERIODS[ctx.query.get('period')] ? ctx.query.get('period') : '7d';
    const state = { period };
    const banner = errorBanner();
    const range = h('p', { class: 'muted', testid: 'kpi-range' });
    const cards = h('div', { class: 'cards', testid: 'kpi-cards' });
    const sla = h('div', { class: 'table-wrap', testid: 'kpi-sla' });
    const agents = h('div', { class: 'table-wrap', testid: 'kpi-agents' });
    const chartsBox = h('div', { class: 'charts' });
    const ticketsTitle = h('h3');
    const qualityTitle = h('h3');
    const ticketsBox = h('div', { class: 'chart-box' });
    const qualityBox = h('div', { class: 'chart-box' });
    chartsBox.append(ticketsTitle, ticketsBox, qualityTitle, qualityBox);
    let charts = null;

    const picker = field(t('kpis.period'), select(Object.keys(PERIODS).map((p) => [p, t(`kpis.period.${p}`)]), period, {
      testid: 'kpi-period',
      onchange: (e) => {
        state.period = e.target.value;
        ctx.setQuery({ period: state.period === '7d' ? '' : state.period });
        refresh().catch((err) => { if (!ctx.handleError(err)) banner.show(ctx.explain(err)); });
      },
    }));

    root.append(
      pageHeader(t('kpis.title'), range),
      h('form', { class: 'filters', onsubmit: (e) => e.preventDefault() }, picker),
      banner.el,
      cards,
      h('section', { class: 'card' }, h('h2', {}, t('kpis.sla')), sla),
      h('section', { class: 'card' }, h('h2', {}, t('kpis.agents')), agents),
      h('section', { class: 'card', testid: 'kpi-series' }, h('h2', {}, t('kpis.series')), chartsBox));

    function makeCharts() {
      return {
        tickets: timeChart(ticketsBox, {
          label: t('kpis.series'), testid: 'chart-kpi-tickets', height: 200, timeLabel: t('chart.time'),
          series: [
            { label: t('kpis.opened'), color: '#1565c0', scale: 'n', bars: true },
            { label: t('kpis.resolvedSeries'), color: '#2e7d32', scale: 'n' },
            { label: t('kpis.guidesSent'), color: '#ef6c00', scale: 'n', dash: [6, 4] },
          ],
          axes: [{ scale: 'n', range: (u, min, max) => [0, Math.max(1, max ?? 1)] }],
        }),
        quality: timeChart(qualityBox, {
          label: t('kpis.series'), testid: 'chart-kpi-quality', height: 200, timeLabel: t('chart.time'),
          series: [
            { label: t('kpis.slaMet'), color: '#2e7d32', scale: 'pct', points: true, format: (v) => `${Math.round(v)}%` },
            { label: t('kpis.meanFirstResponse'), color: '#7b1fa2', scale: 'min', points: true },
          ],
          axes: [
            { scale: 'pct', range: () => [0, 100] },
            { scale: 'min', side: 1, range: (u, min, max) => [0, Math.max(30, max ?? 30)] },
          ],
        }),
      };
    }

    async function refresh() {
      const now = await businessNow();
      const since = new Date(now.getTime() - PERIODS[state.period] * 3600 * 1000).toISOString();
      const until = now.toISOString();
      const bucket = state.period === '30d' ? 'day' : 'hour';
      const [report, series, people] = await Promise.all([
        api('/kpis', { query: { since, until } }),
        api('/kpis/series', { query: { since, until, bucket } }),
        api('/kpis/agents', { query: { since, until } }),
      ]);
      const value = (kind, k) => (k.value == null ? t('app.none') : shown(kind, k.value));
      patch(agents, people.agents.length === 0 ? h('p', { class: 'empty' }, t('kpis.noAgents')) : h('table', {},
        h('thead', {}, h('tr', {}, ['agent', 'volume', 'first_contact_resolution', 'first_response', 'time_to_resolve', 'satisfaction']
          .map((c) => h('th', { scope: 'col' }, t(c === 'agent' || c === 'volume' ? `kpis.agent.${c}` : `kpis.${c}`))))),
        h('tbody', {}, people.agents.map((a) => h('tr', { testid: 'agent-row', dataset: { agent: a.agent } },
          h('th', { scope: 'row' }, a.agent), h('td', { class: 'num' }, String(a.volume)),
          h('td', { class: 'num' }, value('ratio', a.first_contact_resolution)),
          h('td', { class: 'num' }, value('mean', a.first_response)),
          h('td', { class: 'num' }, value('mean', a.time_to_resolve)),
          h('td', { class: 'num' }, value('average', a.satisfaction)))))));
      banner.clear();
      patch(range, t('kpis.range', { since: fmtTime(report.since), until: fmtTime(report.until) }));
      patch(cards, CARDS.map(([name, kind]) => card(name, kind, report[name])));
      patch(sla, h('table', {},
        h('caption', {}, t('kpis.slaCaption')),
        h('thead', {}, h('tr', {}, [t('ticket.priority'), t('kpis.slaFirstResponse'), t('kpis.slaResolution')].map((c) => h('th', { scope: 'col' }, c)))),
        h('tbody', {}, report.sla.map((s) => h('tr', { testid: 'sla-row', dataset: { priority: s.priority } },
          h('th', { scope: 'row' }, priorityBadge(s.priority)), ratioCell(s.first_response), ratioCell(s.resolution))))));
      const bucketName = term('kpis.bucket', bucket);
      patch(ticketsTitle, t('kpis.chartTickets', { bucket: bucketName }));
      patch(qualityTitle, t('kpis.chartQuality', { bucket: bucketName }));
      charts ??= makeCharts();
      const pts = series.points;
      // Each bucket drawn at its middle, so a day's bar stands over that day.
      const width = bucket === 'day' ? 86400 : 3600;
      const xs = pts.map((p) => seconds(p.start) + width / 2);
      const xRange = xs.length ? [xs[0] - width / 2, xs[xs.length - 1] + width / 2] : [seconds(series.since), seconds(series.until)];
      charts.tickets.setData(xs, [pts.map((p) => p.tickets_opened), pts.map((p) => p.tickets_resolved), pts.map((p) => p.guides_sent)], { xRange });
      charts.quality.setData(xs, [
        pts.map((p) => (p.sla_met_share == null ? null : 100 * p.sla_met_share)),
        pts.map((p) => (p.mean_first_response_seconds == null ? null : fmtNumberRaw(p.mean_first_response_seconds / 60))),
      ], { xRange });
    }

    return {
      refresh,
      showError: banner.show,
      destroy() {
        if (charts) Object.values(charts).forEach((c) => c.destroy());
      },
    };
  },
};

function fmtNumberRaw(v) {
  return Math.round(v * 10) / 10;
}
