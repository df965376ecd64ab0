// The console's shell: sign-in, the header (navigation, language, who is signed in), hash
// routing to the pages, the live poll, and toasts.

import { api, ApiError, getKey, setKey } from './api.js';
import { h } from './dom.js';
import { LOCALES, locale, onLocaleChange, setLocale, t, term } from './i18n.js';
import fleetPage from './pages/fleet.js';
import registryPage from './pages/registry.js';
import guidesPage from './pages/guides.js';
import kpisPage from './pages/kpis.js';
import newTicketPage from './pages/newticket.js';
import queuePage from './pages/queue.js';
import signinPage from './pages/signin.js';
import ticketPage from './pages/ticket.js';

// How often the open page re-reads its data while the tab is visible. A URL parameter
// (?poll=2) shortens it for demos and tests.
const POLL_SECONDS = Number(new URLSearchParams(window.location.search).get('poll')) || 5;

const ROUTES = [
  [/^\/queue$/, queuePage, 'queue'],
  [/^\/tickets\/new$/, newTicketPage, 'queue'],
  [/^\/tickets\/(\d+)$/, ticketPage, 'queue', (m) => ({ id: Number(m[1]) })],
  [/^\/fleet$/, fleetPage, 'fleet'],
  [/^\/registry$/, registryPage, 'registry'],
  [/^\/kpis$/, kpisPage, 'kpis'],
  [/^\/guides$/, guidesPage, 'guides', () => ({ mode: 'list' })],
  [/^\/guides\/new$/, guidesPage, 'guides', () => ({ mode: 'new' })],
  [/^\/guides\/([^/]+)\/([^/]+)\/edit$/, guidesPage, 'guides',
    (m) => ({ mode: 'edit', id: decodeURIComponent(m[1]), locale: decodeURIComponent(m[2]) })],
  [/^\/guides\/([^/]+)\/([^/]+)$/, guidesPage, 'guides',
    (m) => ({ mode: 'view', id: decodeURIComponent(m[1]), locale: decodeURIComponent(m[2]) })],
];

const main = document.getElementById('main');
const header = document.getElementById('shell');
const toasts = document.getElementById('toasts');
const liveStatus = document.getElementById('live-status');

const session = { me: null };
let view = null; // the mounted page: { refresh(), destroy(), showError() }
let lastUpdated = null;

function parseHash() {
  const raw = window.location.hash.replace(/^#/, '') || '/queue';
  const [path, search = ''] = raw.split('?');
  return { path: path || '/queue', query: new URLSearchParams(search) };
}

/** Replace the hash's query without a navigation (filters, paging). */
function setQuery(values) {
  const { path, query } = parseHash();
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === null || value === '') query.delete(name);
    else query.set(name, value);
  }
  const search = query.toString();
  history.replaceState(null, '', `#${path}${search ? `?${search}` : ''}`);
}

export function toast(message, kind = 'info') {
  const item = h('div', { class: `toast toast-${kind}`, role: kind === 'error' ? 'alert' : 'status', testid: `toast-${kind}` },
    h('span', {}, message),
    h('button', { type: 'button', class: 'link', 'aria-label': t('app.close'), onclick: () => item.remove() }, '×'));
  toasts.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 12000 : 5000);
}

/** How a page reports a failed call: sign out on 401, explain 403, otherwise the detail. */
function explain(err) {
  if (!(err instanceof ApiError)) return String(err && err.message ? err.message : err);
  if (err.status === 0) return t('error.network', { detail: err.detail });
  if (err.status === 403) return t('error.forbidden', { detail: err.detail });
  return t('error.http', { status: err.status, detail: err.detail });
}

function handleError(err) {
  if (err instanceof ApiError && err.status === 401 && session.me) {
    signOut(t('signin.expired', { detail: err.detail }));
    return true;
  }
  return false;
}

function can(permission) {
  return Boolean(session.me && session.me.permissions.includes(permission));
}

function renderHeader(active) {
  const me = session.me;
  const nav = me ? h('nav', { 'aria-label': t('nav.label') }, h('ul', {},
    [['queue', '#/queue'], ['fleet', '#/fleet'], ['kpis', '#/kpis'], ['guides', '#/guides'],
      ...(can('manage_registry') ? [['registry', '#/registry']] : [])].map(([name, href]) =>
      h('li', {}, h('a', { href, testid: `nav-${name}`, 'aria-current': active === name ? 'page' : null }, t(`nav.${name}`)))))) : null;
  const langSelect = h('select', { id: 'lang', testid: 'language', onchange: (e) => setLocale(e.target.value) },
    LOCALES.map((code) => h('option', { value: code, selected: code === locale(), lang: code }, t(`locale.${code}`))));
  header.replaceChildren(
    h('div', { class: 'brand' }, h('span', { class: 'logo', 'aria-hidden': 'true' }, '◆'), t('app.name')),
    nav,
    h('div', { class: 'session' },
      h('label', { for: 'lang', class: 'visually-hidden' }, t('app.language')), langSelect,
      me ? h('span', { class: 'who', testid: 'who' }, t('app.signedInAs', { name: me.name, role: term('role', me.role) })) : null,
      me ? h('button', { type: 'button', class: 'secondary', testid: 'sign-out', onclick: () => signOut(t('signin.signedOut')) }, t('app.signOut')) : null));
  document.title = t('app.title');
  document.getElementById('skip').textContent = t('app.skip');
}

async function route() {
  const { path, query } = parseHash();
  if (view) view.destroy?.();
  view = null;
  main.replaceChildren();
  // Toasts belong to the page that raised them (errors stay until dismissed or timed out).
  for (const old of toasts.querySelectorAll('.toast-success, .toast-info')) old.remove();
  if (!session.me) {
    renderHeader(null);
    view = signinPage.mount(main, { onSignedIn: signedIn, message: route.message });
    route.message = undefined;
    return;
  }
  const found = ROUTES.map(([re, page, nav, params]) => [path.match(re), page, nav, params]).find(([m]) => m);
  renderHeader(found ? found[2] : null);
  if (!found) {
    main.append(h('h1', {}, t('error.title')), h('p', {}, t('app.notFound', { path })));
    return;
  }
  const [m, page, , params] = found;
  const ctx = {
    me: session.me, can, query, params: params ? params(m) : {}, setQuery, toast, explain, handleError,
    navigate: (hash) => { window.location.hash = hash; },
  };
  view = page.mount(main, ctx);
  main.focus({ preventScroll: true });
  window.scrollTo(0, 0);
  await refresh();
}

/** Re-read the current page's data (a poll, or after an action). */
async function refresh() {
  const mine = view;
  // One refresh at a time per page: a slow server gets no pile of overlapping polls.
  if (!mine || !mine.refresh || mine.busy) return;
  mine.busy = true;
  try {
    await mine.refresh();
    lastUpdated = new Date();
  } catch (err) {
    if (!handleError(err) && mine === view) mine.showError?.(explain(err));
  } finally {
    mine.busy = false;
    renderLive();
  }
}

function renderLive() {
  if (!session.me) {
    liveStatus.textContent = '';
    return;
  }
  const parts = [document.hidden ? t('app.paused') : t('app.live', { seconds: POLL_SECONDS })];
  if (lastUpdated) parts.push(t('app.updated', { time: lastUpdated.toLocaleTimeString(locale()) }));
  liveStatus.textContent = parts.join(' · ');
}

function signedIn(me) {
  session.me = me;
  if (!window.location.hash || window.location.hash === '#/' || window.location.hash === '#') {
    history.replaceState(null, '', '#/queue');
  }
  route();
}

function signOut(message) {
  setKey(null);
  session.me = null;
  route.message = message;
  route();
}

async function start() {
  onLocaleChange(() => route());
  window.addEventListener('hashchange', () => route());
  document.addEventListener('visibilitychange', () => {
    renderLive();
    if (!document.hidden) refresh();
  });
  setInterval(() => {
    if (!document.hidden) refresh();
  }, POLL_SECONDS * 1000);
  document.getElementById('skip').addEventListener('click', () => main.focus());
  if (getKey()) {
    try {
      session.me = await api('/keys/me');
    } catch (err) {
      setKey(null);
      route.message = t('signin.expired', { detail: err.detail || String(err) });
    }
  }
  route();
}

start();
