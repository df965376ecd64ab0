// The knowledge base: search by meaning and words in Chinese or English, read a guide and its
// history; with edit_guides, draft a new guide or an edit and send it for review; with
// review_guides (R&D), publish or reject the version in review.

import { api } from '../api.js';
import { facts, field, h, patch, select } from '../dom.js';
import { fmtPercent, fmtTime, LOCALES, t, term } from '../i18n.js';
import { errorBanner, pageHeader } from './common.js';

const CATEGORIES = ['basic', 'troubleshooting', 'technical', 'after_sales'];
const AUDIENCES = ['all', 'novice', 'senior'];
const FAULTS = ['connectivity_loss', 'battery_failure', 'overheating', 'stuck_sensor', 'reboot_loop'];

const guidePath = (id, loc) => `/guides/${encodeURIComponent(id)}/${encodeURIComponent(loc)}`;
const guideHash = (id, loc) => `#${guidePath(id, loc)}`;
const lines = (text) => text.split('\n').map((s) => s.trim()).filter(Boolean);
const commas = (text) => text.split(/[,，]/).map((s) => s.trim()).filter(Boolean);

function firmwareRange(g) {
  if (g.firmware) return g.firmware;
  const parts = [];
  if (g.firmware_min) parts.push(`>=${g.firmware_min}`);
  if (g.firmware_max) parts.push(`<${g.firmware_max}`);
  return parts.join(',');
}

function listView(root, ctx) {
  const banner = errorBanner();
  const state = { q: ctx.query.get('q') || '', locale: LOCALES.includes(ctx.query.get('locale')) ? ctx.query.get('locale') : '' };
  const input = h('input', { type: 'search', name: 'q', value: state.q, maxlength: 500, class: 'wide', testid: 'guide-query' });
  const localeSelect = select([['', t('guides.anyLocale')], ...LOCALES.map((l) => [l, term('locale', l)])], state.locale, { testid: 'guide-locale' });
  const heading = h('h2');
  const results = h('div', { testid: 'guide-results' }, h('p', { class: 'muted' }, t('app.loading')));
  const form = h('form', { class: 'filters', role: 'search', testid: 'guide-search', onsubmit: (e) => {
    e.preventDefault();
    state.q = input.value.trim();
    state.locale = localeSelect.value;
    run();
  } },
  h('div', { class: 'grow-field' }, field(t('guides.query'), input)),
  field(t('guides.locale'), localeSelect),
  h('button', { type: 'submit', testid: 'guide-search-submit' }, t('guides.submit')),
  h('button', { type: 'button', class: 'secondary', onclick: () => { input.value = ''; state.q = ''; run(); } }, t('guides.clear')));

  root.append(
    pageHeader(t('guides.title'), ctx.can('edit_guides')
      ? h('a', { href: '#/guides/new', class: 'button-link', testid: 'guide-new' }, `+ ${t('guides.new')}`) : null),
    h('section', { class: 'card' }, h('h2', { class: 'visually-hidden' }, t('guides.search')), form),
    banner.el,
    h('section', { class: 'card' }, heading, results));

  function run() {
    ctx.setQuery({ q: state.q, locale: state.locale });
    refresh().catch((err) => { if (!ctx.handleError(err)) banner.show(ctx.explain(err)); });
  }

  let searched = null; // the search whose hits are shown: polls do not embed the query again
  async function refresh() {
    if (state.q) {
      const key = `${state.q}\n${state.locale}`;
      if (searched === key) return;
      const found = await api('/guides/search', { query: { q: state.q, locale: state.locale } });
      searched = key;
      banner.clear();
      const hits = found.hits;
      patch(heading, t('guides.results', { q: state.q }), ' ',
        h('small', { class: 'muted', testid: 'guide-search-mode' }, found.semantic ? t('guides.semantic') : t('guides.wordsOnly')));
      patch(results, hits.length === 0 ? h('p', { class: 'empty' }, t('guides.none')) : h('ol', { class: 'results' },
        hits.map((g) => h('li', { testid: 'guide-hit', dataset: { guideId: g.guide_id, score: g.score } },
          h('div', {},
            h('a', { href: guideHash(g.guide_id, g.locale), 'data-focus-key': `g-${g.guide_id}` }, g.title),
            h('div', { class: 'muted' }, `${g.guide_id} · ${term('locale', g.locale)} · ${term('category', g.category)}`,
              g.fault ? ` · ${term('fault', g.fault)}` : '')),
          h('div', { class: 'score', testid: 'guide-score' },
            h('strong', {}, `${t('guides.score')} ${fmtPercent(g.score, 0)}`),
            h('br'),
            h('small', {}, [
              g.meaning_score != null ? `${t('guides.scoreMeaning')} ${fmtPercent(g.meaning_score, 0)}` : null,
              g.word_score != null ? `${t('guides.scoreWords')} ${fmtPercent(g.word_score, 0)}` : null,
            ].filter(Boolean).join(' · ')))))));
      return;
    }
    searched = null;
    const data = await api('/guides', { query: { locale: state.locale } });
    banner.clear();
    const all = data.items;
    patch(heading, t('guides.all'));
    patch(results, all.length === 0 ? h('p', { class: 'empty' }, t('guides.none')) : h('div', { class: 'table-wrap' }, h('table', {},
      h('thead', {}, h('tr', {}, [t('guides.titleField'), t('guides.id'), t('guides.locale'), t('guides.category'), t('guides.fault'), t('guides.updated')]
        .map((c) => h('th', { scope: 'col' }, c)))),
      h('tbody', {}, all.map((g) => h('tr', { testid: 'guide-row' },
        h('td', {}, h('a', { href: guideHash(g.guide_id, g.locale), 'data-focus-key': `g-${g.guide_id}-${g.locale}` }, g.title)),
        h('td', {}, g.guide_id), h('td', {}, term('locale', g.locale)), h('td', {}, term('category', g.category)),
        h('td', {}, g.fault ? term('fault', g.fault) : t('app.none')), h('td', {}, fmtTime(g.updated_at))))))));
  }
  return { refresh, showError: banner.show, destroy() {} };
}

function guideView(root, ctx) {
  const banner = errorBanner();
  const body = h('article', { class: 'card guide-body', testid: 'guide-view' }, h('p', { class: 'muted' }, t('app.loading')));
  const history = h('section', { class: 'card', testid: 'guide-history' });
  root.append(h('p', {}, h('a', { href: '#/guides' }, `← ${t('guides.back')}`)), banner.el, body, history);
  const note = h('textarea', { rows: 2, maxlength: 2000, testid: 'guide-review-note' });
  const status = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite', testid: 'guide-review-status' });
  const id = ctx.params.id;
  const loc = ctx.params.locale;

  async function step(name, path, payload) {
    status.className = 'form-status';
    status.textContent = t('actions.working');
    try {
      await api(`/guides/${encodeURIComponent(id)}/${path}`, { method: 'POST', body: { locale: loc, ...payload } });
      const message = t(`guides.${name}Done`);
      status.className = 'form-status success';
      status.textContent = message;
      ctx.toast(message, 'success');
      note.value = '';
      await refresh();
    } catch (err) {
      if (ctx.handleError(err)) return;
      status.className = 'form-status error';
      status.textContent = ctx.explain(err);
    }
  }

  function versionRow(v) {
    return h('li', { class: 'version', testid: 'guide-version', dataset: { state: v.state, version: v.version } },
      h('div', {}, h('strong', {}, t('guides.version', { n: v.version })), ' ',
        h('span', { class: `badge version-${v.state}`, testid: 'guide-version-state' }, term('versionState', v.state)), ' ',
        h('span', { testid: 'guide-version-title' }, v.title)),
      h('div', { class: 'muted' }, t('guides.editedBy', { who: v.editor, time: fmtTime(v.edited_at) }),
        v.reviewer ? ` · ${t('guides.reviewedBy', { who: v.reviewer, time: fmtTime(v.reviewed_at) })}` : ''),
      v.note ? h('p', { class: 'note' }, `${t('guides.reviewNote')}: ${v.note}`) : null,
      v.diff ? h('details', {}, h('summary', {}, t('guides.diff')), h('pre', { class: 'diff', testid: 'guide-diff' }, v.diff)) : null);
  }

  async function refresh() {
    const [g, versions] = await Promise.all([
      api(guidePath(id, loc)).catch((err) => { if (err.status === 404) return null; throw err; }),
      api(`${guidePath(id, loc)}/versions`).catch((err) => { if (err.status === 404) return { items: [] }; throw err; }),
    ]);
    banner.clear();
    const open = versions.items.find((v) => v.state === 'draft' || v.state === 'in_review');
    const actions = [];
    if (open?.state === 'draft' && ctx.can('edit_guides')) {
      actions.push(h('button', { type: 'button', testid: 'guide-submit-review', onclick: () => step('review', 'review', {}) }, t('guides.sendForReview')));
    }
    if (open?.state === 'in_review' && ctx.can('review_guides')) {
      actions.push(field(t('guides.reviewNote'), note),
        h('div', { class: 'button-row' },
          h('button', { type: 'button', testid: 'guide-publish', onclick: () => step('publish', 'publish', { note: note.value.trim() || null }) }, t('guides.publish')),
          h('button', { type: 'button', class: 'secondary', testid: 'guide-reject', onclick: () => step('reject', 'reject', { note: note.value.trim() }) }, t('guides.reject'))));
    }
    patch(history, h('h2', {}, t('guides.history')),
      open ? h('p', { class: 'banner banner-warn', testid: 'guide-pending' }, t(`guides.pending.${open.state}`, { n: open.version })) : null,
      actions.length ? h('div', { class: 'review-actions' }, actions) : null, status,
      versions.items.length === 0 ? h('p', { class: 'muted' }, t('guides.noVersions'))
        : h('ol', { class: 'versions', reversed: true }, versions.items.map(versionRow)));
    if (g === null) {
      patch(body, h('div', { class: 'page-head' }, h('h1', { testid: 'guide-title' }, open?.title ?? id),
        ctx.can('edit_guides') && open ? h('a', { href: `${guideHash(id, loc)}/edit`, testid: 'guide-edit' }, t('guides.edit')) : null),
      h('p', { class: 'banner banner-warn', testid: 'guide-unpublished' }, t('guides.unpublished')));
      return;
    }
    const other = LOCALES.find((l) => l !== g.locale);
    patch(body,
      h('div', { class: 'page-head' }, h('h1', { testid: 'guide-title' }, g.title),
        ctx.can('edit_guides') ? h('a', { href: `${guideHash(g.guide_id, g.locale)}/edit`, testid: 'guide-edit' }, t('guides.edit')) : null,
        other ? h('a', { href: guideHash(g.guide_id, other), lang: other }, term('locale', other)) : null),
      facts([
        [t('guides.id'), g.guide_id],
        [t('guides.locale'), term('locale', g.locale)],
        [t('guides.category'), term('category', g.category)],
        [t('guides.fault'), g.fault ? term('fault', g.fault) : t('app.none')],
        [t('guides.audience'), term('audience', g.audience)],
        [t('guides.kinds'), g.kinds?.length ? g.kinds.map((k) => term('kind', k)).join(', ') : t('guides.anyKind')],
        [t('guides.models'), g.models?.length ? g.models.join(', ') : t('guides.anyModel')],
        [t('guides.firmware'), firmwareRange(g) || t('guides.anyFirmware')],
        [t('guides.updated'), g.updated_at ? fmtTime(g.updated_at) : undefined],
        [t('guides.source'), g.source_path === 'api' ? t('guides.sourceApi') : g.source_path],
      ]),
      h('h2', {}, t('guides.problem')), h('p', {}, g.problem),
      h('h2', {}, t('guides.scenario')), h('p', {}, g.scenario),
      h('h2', {}, t('guides.steps')), h('ol', {}, (g.steps ?? []).map((x) => h('li', {}, x))),
      g.cautions?.length ? [h('h2', {}, t('guides.cautions')), h('ul', {}, g.cautions.map((c) => h('li', {}, c)))] : null);
  }
  return { refresh, showError: banner.show, destroy() {} };
}

function guideEditor(root, ctx) {
  const creating = ctx.params.mode === 'new';
  const banner = errorBanner();
  const status = h('p', { class: 'form-status', role: 'status', testid: 'guide-status' });
  if (!ctx.can('edit_guides')) {
    root.append(h('p', {}, h('a', { href: '#/guides' }, `← ${t('guides.back')}`)),
      h('p', { class: 'banner banner-error', testid: 'guide-read-only' }, t('guides.readOnly')));
    return { destroy() {} };
  }
  const f = {
    guide_id: h('input', { type: 'text', required: true, pattern: '[a-z0-9_\\-]+', maxlength: 100, testid: 'guide-id', disabled: !creating }),
    locale: select(LOCALES.map((l) => [l, term('locale', l)]), ctx.params.locale || 'en-US', { testid: 'guide-form-locale', disabled: !creating }),
    category: select(CATEGORIES.map((c) => [c, term('category', c)]), 'troubleshooting', { testid: 'guide-category' }),
    fault: select([['', t('guides.noFault')], ...FAULTS.map((x) => [x, term('fault', x)])], '', { testid: 'guide-fault' }),
    audience: select(AUDIENCES.map((a) => [a, term('audience', a)]), 'all', { testid: 'guide-audience' }),
    kinds: h('input', { type: 'text', testid: 'guide-kinds' }),
    models: h('input', { type: 'text', testid: 'guide-models' }),
    firmware: h('input', { type: 'text', testid: 'guide-firmware' }),
    title: h('input', { type: 'text', required: true, maxlength: 300, class: 'wide', testid: 'guide-title-input' }),
    problem: h('textarea', { rows: 3, required: true, testid: 'guide-problem' }),
    scenario: h('textarea', { rows: 2, required: true, testid: 'guide-scenario' }),
    steps: h('textarea', { rows: 6, required: true, testid: 'guide-steps' }),
    cautions: h('textarea', { rows: 3, testid: 'guide-cautions' }),
  };
  const save = h('button', { type: 'submit', testid: 'guide-save' }, creating ? t('guides.create') : t('guides.save'));
  const form = h('form', { class: 'card', testid: 'guide-form', onsubmit: submit },
    h('h1', {}, creating ? t('guides.new') : `${t('guides.edit')}: ${ctx.params.id} (${term('locale', ctx.params.locale)})`),
    h('div', { class: 'guide-form' },
      field(t('guides.id'), f.guide_id), field(t('guides.locale'), f.locale),
      field(t('guides.category'), f.category), field(t('guides.fault'), f.fault),
      field(t('guides.audience'), f.audience), field(t('guides.kinds'), f.kinds, t('guides.listHelp')),
      field(t('guides.models'), f.models, t('guides.listHelp')), field(t('guides.firmware'), f.firmware, t('guides.firmwareHelp')),
      h('div', { class: 'full' }, field(t('guides.titleField'), f.title, t('guides.placeholdersHelp'))),
      h('div', { class: 'full' }, field(t('guides.problem'), f.problem)),
      h('div', { class: 'full' }, field(t('guides.scenario'), f.scenario)),
      h('div', { class: 'full' }, field(t('guides.steps'), f.steps, t('guides.stepsHelp'))),
      h('div', { class: 'full' }, field(t('guides.cautions'), f.cautions, t('guides.cautionsHelp')))),
    status,
    h('div', { class: 'button-row' }, save,
      h('a', { href: creating ? '#/guides' : guideHash(ctx.params.id, ctx.params.locale) }, t('guides.cancel'))));
  root.append(h('p', {}, h('a', { href: '#/guides' }, `← ${t('guides.back')}`)), banner.el, form);

  const fileNote = h('p', { class: 'banner banner-warn', hidden: true, testid: 'guide-file-note' });
  form.insertBefore(fileNote, form.children[1]);

  let loaded = creating;
  async function refresh() {
    if (loaded) return; // never overwrite what the user is typing
    // Go on from the open draft (or the version in review) when there is one, else from
    // the published guide.
    const versions = await api(`${guidePath(ctx.params.id, ctx.params.locale)}/versions`);
    const open = versions.items.find((v) => v.state === 'draft' || v.state === 'in_review');
    const g = open ? { ...open.content, source_path: 'api' } : await api(guidePath(ctx.params.id, ctx.params.locale));
    loaded = true;
    if (g.source_path !== 'api') {
      fileNote.hidden = false;
      fileNote.textContent = t('guides.fileNote', { path: g.source_path });
    }
    f.guide_id.value = g.guide_id;
    f.locale.value = g.locale;
    f.category.value = g.category;
    f.fault.value = g.fault ?? '';
    f.audience.value = g.audience ?? 'all';
    f.kinds.value = (g.kinds ?? []).join(', ');
    f.models.value = (g.models ?? []).join(', ');
    f.firmware.value = firmwareRange(g);
    f.title.value = g.title;
    f.problem.value = g.problem;
    f.scenario.value = g.scenario;
    f.steps.value = (g.steps ?? []).join('\n');
    f.cautions.value = (g.cautions ?? []).join('\n');
  }

  async function submit(event) {
    event.preventDefault();
    const body = {
      category: f.category.value,
      fault: f.fault.value || null,
      audience: f.audience.value,
      kinds: commas(f.kinds.value),
      models: commas(f.models.value),
      firmware: f.firmware.value.trim() || null,
      title: f.title.value.trim(),
      problem: f.problem.value.trim(),
      scenario: f.scenario.value.trim(),
      steps: lines(f.steps.value),
      cautions: lines(f.cautions.value),
    };
    const id = f.guide_id.value.trim();
    const loc = f.locale.value;
    save.disabled = true;
    status.className = 'form-status';
    status.textContent = t('actions.working');
    try {
      const saved = creating
        ? await api('/guides', { method: 'POST', body: { guide_id: id, locale: loc, ...body } })
        : await api(guidePath(id, loc), { method: 'PUT', body });
      ctx.toast(t('guides.drafted', { n: saved.version }), 'success');
      ctx.navigate(guideHash(saved?.guide_id ?? id, saved?.locale ?? loc));
    } catch (err) {
      if (ctx.handleError(err)) return;
      status.className = 'form-status error';
      status.textContent = ctx.explain(err);
      ctx.toast(ctx.explain(err), 'error');
    } finally {
      save.disabled = false;
    }
  }
  return { refresh, showError: banner.show, destroy() {} };
}

export default {
  mount(root, ctx) {
    const mode = ctx.params.mode;
    if (mode === 'view') return guideView(root, ctx);
    if (mode === 'edit' || mode === 'new') return guideEditor(root, ctx);
    return listView(root, ctx);
  },
};
