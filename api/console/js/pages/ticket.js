// One ticket: the problem, customer and SLA, the prediction and its reasons, the guides sent,
// the device's telemetry around the prediction, the timeline, and the staff actions.

import { api } from '../api.js';
import { seconds, timeChart } from '../charts.js';
import { facts, field, h, patch, select } from '../dom.js';
import { fmtDuration, fmtNumber, fmtPercent, fmtTime, reason, t, term } from '../i18n.js';
import { errorBanner, priorityBadge, stateBadge, ticketLink, urgencyBadge } from './common.js';

const OPEN = ['new', 'acknowledged', 'in_progress', 'waiting'];
const HOUR = 3600 * 1000;
// The chart shows the device from this long before the ticket opened to this long after
// (or to now, if sooner).
const WINDOW = 12 * HOUR;
const FALLBACK_CODES = ['fixed_by_guide', 'fixed_remotely', 'firmware_update', 'part_replaced',
  'device_replaced', 'user_action', 'no_fault_found', 'false_alarm', 'duplicate', 'other'];

let codesOnce = null;
/** The resolution codes, as the API's OpenAPI document lists them. */
function resolutionCodes() {
  codesOnce ??= fetch('/openapi.json')
    .then((r) => r.json())
    .then((doc) => doc.components.schemas.ResolutionCode.enum)
    .catch(() => FALLBACK_CODES);
  return codesOnce;
}

function when(iso) {
  return iso ? h('time', { datetime: iso, title: iso }, fmtTime(iso)) : t('app.none');
}

function section(title, testid, ...children) {
  return h('section', { class: 'card', testid, 'aria-label': title }, h('h2', {}, title), ...children);
}

/** The symptom Forewarn wrote, said in the language in use (a person's words as written). */
function symptomText(d) {
  const p = d.phrasing?.symptom;
  if (!p) return d.symptom;
  return t(`phrase.symptom.${p.code}`, {
    ...p,
    fault: term('fault', p.fault),
    probability: p.probability != null ? fmtPercent(p.probability) : '',
    since: p.since ? fmtTime(p.since) : '',
  });
}

function scopeText(d) {
  const p = d.phrasing?.scope;
  return p ? t(`phrase.scope.${p.code}`, p) : d.scope;
}

function triggerText(d) {
  const p = d.phrasing?.trigger;
  if (!p) return d.trigger;
  const text = t(`phrase.trigger.${p.code}`, { ...p, at: p.at ? fmtTime(p.at) : '', channel: term('channel', p.channel) });
  return p.guide_sent ? text + t('phrase.trigger.guideSent') : text;
}

/** Why the clock acted, from the event's codes (the English `why` is for the API). */
function clockWhy(e, d) {
  if (e.actor !== 'forewarn' || !d.which) return null;
  const tier = term('tier', d.tier ?? d.from);
  const which = t(`why.${d.which}`);
  if (e.kind === 'breach_warning') return t('why.warn', { tier, which, left: fmtDuration((new Date(d.due) - new Date(e.at)) / 1000) });
  if (e.kind === 'escalated') return t('why.missed', { tier, which, due: fmtTime(d.due) });
  if (e.kind === 'breached') return t('why.breached', { tier, which, due: d.due ? fmtTime(d.due) : '' });
  return null;
}

function eventSummary(e) {
  const d = e.detail || {};
  const parts = [];
  const why = clockWhy(e, d);
  const name = (v) => {
    if (v == null) return t('app.none');
    if (['acknowledge', 'start', 'resolve', 'close', 'reopen', 'wait'].includes(e.kind)) return term('state', v);
    if (e.kind === 'escalated') return term('tier', v);
    return String(v);
  };
  if ('from' in d || 'to' in d) parts.push(`${name(d.from)} → ${name(d.to)}`);
  if (d.notice) parts.push(term('notice', d.notice));
  if (d.queued != null) parts.push(t('event.queued', { n: d.queued }));
  if (d.how) parts.push(term('how', d.how));
  if (d.via) parts.push(term('via', d.via));
  if (d.fixed != null) parts.push(`${t('ticket.surveyFixed')}: ${d.fixed ? t('app.yes') : t('app.no')}`);
  if (d.rating != null) parts.push(t('ticket.rating', { n: d.rating }));
  if (d.channel) parts.push(d.channel);
  if (d.code) parts.push(term('code', d.code));
  if (d.verdict) parts.push(term('verdict', d.verdict));
  if (d.priority) parts.push(term('priority', d.priority));
  if (d.tier) parts.push(term('tier', d.tier));
  if (d.team) parts.push(d.team);
  if (d.devices != null) parts.push(`${t('fleet.devices')}: ${d.devices}`);
  if (d.parent_ticket_id) parts.push(ticketLink(d.parent_ticket_id));
  if (Array.isArray(d.ticket_ids)) parts.push(...d.ticket_ids.map((id) => ticketLink(id)));
  if (why) parts.push(why);
  const said = d.why_code ? t(`why.${d.why_code}`) : null;
  if (said) parts.push(said);
  // A person's words are quoted as written; Forewarn's own `why` is said above instead.
  const quoted = ['text', 'note', 'why', 'reason', 'comment'].filter((k) => d[k] && !(k === 'why' && (why || said)))
    .map((k) => h('blockquote', {}, d[k]));
  const list = [];
  parts.forEach((p, i) => list.push(i ? ' · ' : '', p));
  return [list.length ? h('span', {}, list) : null, ...quoted];
}

export default {
  mount(root, ctx) {
    const id = ctx.params.id;
    const banner = errorBanner();
    const mayAct = ctx.can('act_tickets');
    let current = null;
    let alive = true;

    const title = h('h1', { testid: 'ticket-title' }, t('ticket.title', { id }));
    const badges = h('div', { class: 'badges', testid: 'ticket-badges' });
    const problem = h('div');
    const prediction = h('div', { testid: 'prediction' });
    const guides = h('div', { testid: 'guides-sent' });
    const notices = h('div', { testid: 'notices-sent' });
    const survey = h('div', { testid: 'ticket-survey' });
    const timeline = h('div', { testid: 'timeline' });
    const evidence = h('pre', { class: 'json' });
    const sla = h('div', { testid: 'ticket-sla' });
    const customer = h('div', { testid: 'ticket-customer' });
    const chartInfo = h('p', { class: 'muted', testid: 'telemetry-window' });
    const chartArea = h('div', { class: 'charts', testid: 'telemetry' });
    const actionStatus = h('p', { class: 'form-status', role: 'status', 'aria-live': 'polite', testid: 'action-status' });
    let charts = null;
    let device = null; // GET /devices/{id}: its health and last contact

    const actions = mayAct ? actionsPanel() : section(t('actions.title'), 'actions',
      h('p', { class: 'muted', testid: 'actions-read-only' }, t('actions.readOnly', { role: term('role', ctx.me.role) })));

    root.append(
      h('p', {}, h('a', { href: '#/queue', testid: 'back-to-queue' }, `← ${t('ticket.back')}`)),
      h('div', { class: 'page-head' }, title, badges),
      banner.el,
      h('div', { class: 'ticket-grid' },
        h('div', { class: 'ticket-main' },
          section(t('ticket.problem'), 'ticket-problem', problem),
          section(t('ticket.prediction'), 'ticket-prediction', prediction),
          section(t('ticket.telemetry'), 'ticket-telemetry', chartInfo, chartArea),
          section(t('ticket.guides'), 'ticket-guides', guides),
          section(t('ticket.notices'), 'ticket-notices', notices),
          section(t('ticket.timeline'), 'ticket-timeline', timeline),
          h('details', { class: 'card' }, h('summary', {}, t('ticket.evidence')), evidence)),
        h('div', { class: 'ticket-side' },
          actions,
          section(t('ticket.sla'), 'ticket-sla-section', sla),
          section(t('ticket.survey'), 'ticket-survey-section', survey),
          section(t('ticket.customer'), 'ticket-customer-section', customer))));

    // Actions: each a button (some with a field) that posts and then shows the ticket the
    // API returns; the outcome goes to the status line and a toast.
    function actionsPanel() {
      const buttons = {};
      const note = h('textarea', { rows: 2, maxlength: 2000, testid: 'action-note', 'data-focus-key': 'note' });
      const code = h('select', { testid: 'resolve-code', required: true });
      resolutionCodes().then((codes) => {
        code.replaceChildren(...codes.map((c) => h('option', { value: c }, term('code', c))));
      });
      const assignee = h('input', { type: 'text', maxlength: 200, value: ctx.me.name, testid: 'assignee' });
      const commentText = h('textarea', { rows: 3, maxlength: 5000, testid: 'comment-text' });
      const reason = h('input', { type: 'text', maxlength: 2000, testid: 'escalate-reason' });
      const how = select(['message', 'call'].map((x) => [x, term('how', x)]), 'call', { testid: 'contact-how' });
      const contactText = h('textarea', { rows: 2, maxlength: 5000, testid: 'contact-text' });
      const withSurvey = h('input', { type: 'checkbox', testid: 'contact-survey' });
      const fixed = select([['yes', t('app.yes')], ['no', t('app.no')]], 'yes', { testid: 'contact-fixed' });
      const rating = select(['5', '4', '3', '2', '1'].map((n) => [n, n]), '5', { testid: 'contact-rating' });
      const surveyComment = h('input', { type: 'text', maxlength: 2000, testid: 'contact-comment' });
      const request = h('textarea', { rows: 2, maxlength: 2000, testid: 'wait-request' });
      const contactBody = () => ({
        how: how.value,
        text: contactText.value.trim(),
        survey: withSurvey.checked && how.value === 'call'
          ? { fixed: fixed.value === 'yes', rating: Number(rating.value), comment: surveyComment.value.trim() }
          : null,
      });

      const button = (name, label, run, cls = 'secondary') => {
        const b = h('button', { type: 'button', class: cls, testid: `action-${name}`, onclick: () => perform(name, label, run) }, label);
        buttons[name] = b;
        return b;
      };
      const post = (path, body) => api(`/tickets/${id}/${path}`, { method: 'POST', body });
      const withNote = () => ({ note: note.value.trim() || null });

      async function perform(name, label, run) {
        const b = buttons[name];
        b.disabled = true;
        b.setAttribute('aria-busy', 'true');
        actionStatus.className = 'form-status';
        actionStatus.textContent = t('actions.working');
        try {
          const detail = await run();
          if (!alive) return;
          render(detail);
          const message = t('actions.done', { action: label });
          actionStatus.className = 'form-status success';
          actionStatus.textContent = message;
          ctx.toast(message, 'success');
          if (['comment'].includes(name)) commentText.value = '';
          if (['escalate'].includes(name)) reason.value = '';
          if (name === 'contact') { contactText.value = ''; withSurvey.checked = false; surveyComment.value = ''; }
          if (name === 'wait') request.value = '';
          if (!['assign', 'comment', 'escalate', 'contact', 'wait'].includes(name)) note.value = '';
          refreshChart(detail).catch(() => {});
        } catch (err) {
          if (ctx.handleError(err)) return;
          const message = t('actions.failed', { action: label, detail: ctx.explain(err) });
          actionStatus.className = 'form-status error';
          actionStatus.textContent = message;
          ctx.toast(message, 'error');
        } finally {
          b.removeAttribute('aria-busy');
          if (current) enable(current);
        }
      }

      const panel = section(t('actions.title'), 'actions',
        actionStatus,
        field(t('actions.note'), note),
        h('div', { class: 'button-row', role: 'group', 'aria-label': t('actions.state') },
          button('acknowledge', t('actions.acknowledge'), () => post('acknowledge', withNote()), 'primary'),
          button('start', t('actions.start'), () => post('start', withNote())),
          button('close', t('actions.close'), () => post('close', withNote())),
          button('reopen', t('actions.reopen'), () => post('reopen', withNote()))),
        h('form', { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); buttons.resolve.click(); } },
          field(t('actions.resolveCode'), code),
          button('resolve', t('actions.resolve'), () => post('resolve', { code: code.value, ...withNote() }), 'primary')),
        h('div', { class: 'button-row' },
          button('confirmed', t('actions.confirmed'), () => post('feedback', { verdict: 'confirmed', ...withNote() })),
          button('false-alarm', t('actions.falseAlarm'), () => post('feedback', { verdict: 'false_alarm', ...withNote() }))),
        h('p', { class: 'help' }, t('actions.feedbackHelp')),
        h('form', { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); buttons.assign.click(); } },
          field(t('actions.assignee'), assignee),
          button('assign', t('actions.assign'), () => post('assign', { assignee: assignee.value.trim() }))),
        h('form', { class: 'inline-form', onsubmit: (e) => { e.preventDefault(); buttons.escalate.click(); } },
          field(t('actions.escalateReason'), reason),
          button('escalate', t('actions.escalate'), () => post('escalate', { reason: reason.value.trim() }))),
        h('form', { class: 'stack-form', testid: 'contact-form', 'aria-label': t('actions.contactTitle'), onsubmit: (e) => { e.preventDefault(); buttons.contact.click(); } },
          h('h3', {}, t('actions.contactTitle')),
          field(t('actions.contactHow'), how),
          field(t('actions.contactText'), contactText),
          h('label', { class: 'check' }, withSurvey, ' ', t('actions.callSurvey')),
          h('div', { class: 'inline-form' },
            field(t('actions.surveyFixed'), fixed),
            field(t('actions.surveyRating'), rating),
            field(t('actions.surveyComment'), surveyComment)),
          h('p', { class: 'help' }, t('actions.contactHelp')),
          h('div', {}, button('contact', t('actions.contact'), () => post('contact', contactBody()), 'primary'))),
        h('form', { class: 'stack-form', onsubmit: (e) => { e.preventDefault(); buttons.wait.click(); } },
          field(t('actions.waitRequest'), request),
          h('div', {}, button('wait', t('actions.wait'), () => post('wait', { request: request.value.trim() })))),
        h('form', { class: 'stack-form', onsubmit: (e) => { e.preventDefault(); buttons.comment.click(); } },
          field(t('actions.commentText'), commentText),
          h('div', {}, button('comment', t('actions.comment'), () => post('comment', { text: commentText.value.trim() })))));

      /** Enable what the ticket's state allows; the API still has the last word (409). */
      function enable(d) {
        const open = OPEN.includes(d.state);
        const why = t('actions.notNow', { state: term('state', d.state) });
        const allow = {
          acknowledge: d.state === 'new',
          start: ['new', 'acknowledged', 'waiting'].includes(d.state),
          wait: ['new', 'acknowledged', 'in_progress'].includes(d.state),
          contact: true,
          resolve: open,
          close: d.state === 'resolved',
          reopen: d.state === 'resolved' || d.state === 'closed',
          escalate: open && d.tier !== 'L3',
          confirmed: true,
          'false-alarm': true,
          assign: true,
          comment: true,
        };
        for (const [name, b] of Object.entries(buttons)) {
          if (b.getAttribute('aria-busy')) continue;
          b.disabled = !allow[name];
          b.title = allow[name] ? '' : (name === 'escalate' && open ? t('actions.atL3') : why);
        }
        buttons.confirmed.setAttribute('aria-pressed', String(d.feedback === 'confirmed'));
        buttons['false-alarm'].setAttribute('aria-pressed', String(d.feedback === 'false_alarm'));
      }
      panel.enable = enable;
      return panel;
    }

    function render(d) {
      current = d;
      patch(title, t('ticket.title', { id: d.ticket_id }), h('span', { class: 'subtitle' }, ` · ${symptomText(d)}`));
      patch(badges, priorityBadge(d.priority), h('span', { class: 'badge' }, term('tier', d.tier)), stateBadge(d.state), urgencyBadge(d));
      patch(problem, facts([
        [t('ticket.fault'), term('fault', d.fault)],
        [t('ticket.symptom'), symptomText(d), 'symptom'],
        [t('ticket.trigger'), triggerText(d), 'trigger'],
        [t('ticket.scope'), scopeText(d), 'scope'],
        [t('ticket.kind'), term('kind', d.kind)],
        [t('new.type'), [term('ticketType', d.ticket_type), d.urgent ? h('span', { class: 'badge urgency-breached', testid: 'urgent' }, ` ${t('ticket.urgent')}`) : null], 'ticket-type'],
        [t('new.channel'), d.channel ? term('channel', d.channel) : undefined],
        [t('ticket.createdBy'), d.created_by ?? undefined],
        [t('ticket.parent'), d.parent_ticket_id ? ticketLink(d.parent_ticket_id) : undefined],
        [t('ticket.recurrenceOf'), d.recurrence_of ? ticketLink(d.recurrence_of) : undefined],
        [t('ticket.children'), d.children.length ? h('span', { class: 'links' }, d.children.map((c) => ticketLink(c))) : undefined],
      ]));
      patch(sla, facts([
        [t('ticket.timeLeft'), urgencyBadge(d)],
        [t('ticket.priority'), priorityBadge(d.priority)],
        [t('ticket.tier'), term('tier', d.tier)],
        [t('ticket.openedTier'), term('tier', d.opened_tier)],
        [t('ticket.team'), d.team],
        [t('ticket.state'), stateBadge(d.state)],
        [t('ticket.assignee'), d.assignee ?? t('app.none'), 'assignee-value'],
        [t('ticket.opened'), when(d.opened_at)],
        [t('ticket.firstResponseDue'), when(d.first_response_due)],
        [t('ticket.firstResponseAt'), when(d.first_response_at)],
        [t('ticket.resolutionDue'), when(d.resolution_due)],
        [t('ticket.feedbackDue'), d.feedback_due ? when(d.feedback_due) : undefined, 'feedback-due'],
        [t('ticket.followUpDue'), d.follow_up_due ? when(d.follow_up_due) : undefined, 'follow-up-due'],
        [t('ticket.resolvedAt'), when(d.resolved_at)],
        [t('ticket.resolutionCode'), d.resolution_code ? term('code', d.resolution_code) : t('app.none'), 'resolution-code'],
        [t('ticket.closedAt'), d.closed_at ? when(d.closed_at) : undefined],
        [t('ticket.escalations'), String(d.escalations)],
        [t('ticket.reopened'), String(d.reopened)],
        [t('ticket.recurrences'), d.recurrences ? String(d.recurrences) : undefined],
        [t('ticket.feedback'), d.feedback ? term('verdict', d.feedback) : t('app.none'), 'feedback-value'],
      ]));
      renderCustomer(d, null);
      renderPrediction(d.prediction);
      renderSurvey(d);
      patch(notices, d.notices.length === 0
        ? h('p', { class: 'muted' }, t('ticket.noNotices'))
        : h('div', { class: 'table-wrap' }, h('table', {},
          h('thead', {}, h('tr', {}, ['notice', 'locale', 'status', 'queuedAt', 'notBefore', 'sentAt']
            .map((c) => h('th', { scope: 'col' }, t(`ticket.${c}`))))),
          h('tbody', {}, d.notices.map((n) => h('tr', { testid: 'notice-sent', dataset: { notice: n.notice ?? '' } },
            h('td', {}, h('strong', {}, term('notice', n.notice)), h('br'), h('small', { class: 'muted' }, n.title)),
            h('td', {}, n.locale ? term('locale', n.locale) : t('app.none')),
            h('td', {}, h('span', { class: `badge delivery-${n.status}` }, term('delivery', n.status))),
            h('td', {}, when(n.created_at)),
            h('td', {}, when(n.not_before)),
            h('td', {}, when(n.sent_at))))))));
      patch(guides, d.guides.length === 0
        ? h('p', { class: 'muted' }, t('ticket.noGuides'))
        : h('div', { class: 'table-wrap' }, h('table', {},
          h('thead', {}, h('tr', {}, ['guide', 'locale', 'status', 'queuedAt', 'notBefore', 'sentAt', 'attempts', 'lastError']
            .map((c) => h('th', { scope: 'col' }, t(`ticket.${c}`))))),
          h('tbody', {}, d.guides.map((g) => h('tr', { testid: 'guide-sent' },
            h('td', {}, h('a', { href: `#/guides/${encodeURIComponent(g.guide_id)}/${encodeURIComponent(g.locale || 'en-US')}` }, g.title), h('br'), h('small', { class: 'muted' }, g.guide_id)),
            h('td', {}, g.locale ? term('locale', g.locale) : t('app.none')),
            h('td', {}, h('span', { class: `badge delivery-${g.status}` }, term('delivery', g.status))),
            h('td', {}, when(g.created_at)),
            h('td', {}, when(g.not_before)),
            h('td', {}, when(g.sent_at)),
            h('td', {}, String(g.attempts)),
            h('td', {}, g.last_error ?? t('app.none'))))))));
      patch(timeline, d.timeline.length === 0
        ? h('p', { class: 'muted' }, t('ticket.noEvents'))
        : h('ol', { class: 'timeline' }, d.timeline.map((e) => h('li', { testid: 'timeline-event', dataset: { kind: e.kind } },
          h('div', { class: 'event-head' },
            when(e.at), ' ', h('strong', {}, term('event', e.kind)), ' ',
            h('span', { class: 'muted' }, t('event.by', { actor: e.actor }))),
          eventSummary(e)))));
      patch(evidence, JSON.stringify(d.evidence, null, 2));
      if (actions.enable) actions.enable(d);
    }

    function renderSurvey(d) {
      const s = d.survey;
      if (!s) {
        patch(survey, h('p', { class: 'muted' }, t('ticket.noSurvey')));
        return;
      }
      const answered = s.answered_at != null;
      patch(survey, facts([
        [t('ticket.surveyAsked'), when(s.created_at)],
        [t('ticket.surveyLinked'), s.linked ? t('app.yes') : t('app.no')],
        [t('ticket.surveyAnswerBy'), answered ? undefined : when(s.answer_by)],
        [t('ticket.surveyAnswered'), answered ? when(s.answered_at) : t('app.none'), 'survey-answered'],
        [t('ticket.surveyVia'), answered ? `${term('via', s.answered_via)}${s.answered_by ? ` (${s.answered_by})` : ''}` : undefined],
        [t('ticket.surveyFixed'), answered ? (s.fixed ? t('app.yes') : t('app.no')) : undefined, 'survey-fixed'],
        [t('ticket.surveyRating'), answered ? t('ticket.rating', { n: s.rating }) : undefined, 'survey-rating'],
        [t('ticket.surveyComment'), s.comment || undefined],
        [t('ticket.surveyCancelled'), s.cancelled_at ? when(s.cancelled_at) : undefined],
        [t('ticket.callbackDue'), d.callback_due_at ? when(d.callback_due_at) : undefined, 'callback-due'],
        [t('ticket.callbackDone'), d.callback_done_at ? when(d.callback_done_at) : undefined, 'callback-done'],
      ]));
    }

    function renderCustomer(d, fresh) {
      if (fresh) device = fresh;
      const dev = device;
      patch(customer, facts([
        [t('ticket.customerId'), d.customer_id ?? t('app.none'), 'customer-id'],
        [t('ticket.segment'), term('segment', d.segment)],
        [t('ticket.contact'), d.contact ?? t('app.none'), 'contact'],
        [t('new.contactPerson'), d.contact_person ?? undefined, 'contact-person'],
        [t('new.department'), d.department ?? undefined, 'department'],
        [t('ticket.device'), d.device_id ?? t('app.none'), 'device-id'],
        [t('ticket.model'), d.model ?? t('app.none')],
        [t('ticket.firmware'), d.firmware ?? t('app.none')],
        [t('ticket.deviceStatus'), dev ? h('span', { class: `badge health-${dev.health}` }, term('health', dev.health)) : undefined],
        [t('ticket.lastSeen'), dev ? when(dev.last_seen) : undefined],
      ]));
    }

    function renderPrediction(p) {
      if (!p) {
        patch(prediction, h('p', { class: 'muted' }, t('ticket.noPrediction')));
        return;
      }
      patch(prediction,
        h('div', { class: 'probability' },
          h('span', { class: 'big', testid: 'probability' }, fmtPercent(p.probability)),
          h('meter', { min: 0, max: 1, low: 0.5, high: 0.8, optimum: 0, value: p.probability, 'aria-label': t('ticket.probability') })),
        facts([
          [t('ticket.maxProbability'), fmtPercent(p.max_probability)],
          [t('ticket.hoursToEmpty'), p.hours_to_empty != null ? t('ticket.hours', { h: fmtNumber(p.hours_to_empty) }) : undefined],
          [t('ticket.predictedAt'), when(p.opened_at)],
          [t('ticket.lastPredictedAt'), when(p.last_predicted_at)],
          [t('ticket.incidentState'), term('incident', p.state)],
          [t('ticket.outcome'), p.outcome ? term('outcome', p.outcome) : undefined],
          [t('ticket.rule'), p.rule],
          [t('ticket.modelVersion'), p.model_version != null ? String(p.model_version) : t('app.none')],
        ]),
        h('h3', {}, t('ticket.reasons')),
        h('ul', { class: 'reasons', testid: 'reasons' }, p.reasons.map((r) => h('li', {}, reason(r)))));
    }

    async function refreshChart(d) {
      if (!d.device_id) {
        patch(chartInfo, t('ticket.fleetNoTelemetry'));
        return;
      }
      const opened = new Date(d.opened_at).getTime();
      const now = new Date(d.now).getTime();
      const since = new Date(opened - WINDOW);
      const until = new Date(Math.max(Math.min(now, opened + WINDOW), opened + 60 * 1000));
      const [series, dev] = await Promise.all([
        api(`/devices/${encodeURIComponent(d.device_id)}/telemetry`, { query: { since: since.toISOString(), until: until.toISOString() } }),
        api(`/devices/${encodeURIComponent(d.device_id)}`).catch(() => null),
      ]);
      if (!alive) return;
      if (dev) renderCustomer(current ?? d, dev);
      patch(chartInfo, series.points.length === 0 ? t('ticket.noTelemetry')
        : t('ticket.telemetryWindow', { since: fmtTime(series.since), until: fmtTime(series.until), bucket: fmtDuration(series.bucket_seconds) }));
      if (!charts) {
        const mk = (label, key, color, range) => {
          const box = h('div', { class: 'chart-box' });
          chartArea.append(box);
          return { key, chart: timeChart(box, { title: label, testid: `chart-${key}`, height: 150, timeLabel: t('chart.time'),
            series: [{ label, color, scale: key }], axes: [{ scale: key, range }] }) };
        };
        charts = [
          mk(t('chart.battery'), 'battery_pct', '#2e7d32', (u, min, max) => [Math.min(0, min ?? 0), Math.max(100, max ?? 100)]),
          mk(t('chart.signal'), 'signal_dbm', '#1565c0'),
          mk(t('chart.temperature'), 'temperature_c', '#c62828'),
        ];
      }
      const xs = series.points.map((p) => seconds(p.t));
      const markers = [{ t: seconds(d.opened_at), label: t('ticket.markerOpened'), color: '#555', dash: [4, 4] }];
      if (d.prediction) markers.unshift({ t: seconds(d.prediction.opened_at), label: t('ticket.markerPrediction'), color: '#7b1fa2' });
      for (const { key, chart } of charts) {
        chart.setData(xs, [series.points.map((p) => p[key])], { markers, xRange: [seconds(series.since), seconds(series.until)] });
      }
      chartArea.dataset.points = String(xs.length);
      chartArea.hidden = xs.length === 0; // the line above says there is nothing to draw
    }

    async function refresh() {
      const d = await api(`/tickets/${id}`);
      if (!alive) return;
      banner.clear();
      render(d);
      await refreshChart(d);
    }

    return {
      refresh,
      showError: banner.show,
      destroy() {
        alive = false;
        for (const c of charts ?? []) c.chart.destroy();
      },
    };
  },
};
