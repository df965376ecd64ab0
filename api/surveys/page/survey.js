// The owner's survey: what the ticket's resolution was, "is it fixed?", a rating from 1 to 5
// and a comment, posted to POST /survey/{token}. No key: the token in the address is signed.
// Everything goes into the page as text (no innerHTML); nothing is loaded from elsewhere.

const TEXT = {
  en: {
    title: 'Ticket #{id}: is your {device} working again?',
    done: 'What we did: {what}.',
    fixed: 'Is the problem really fixed?',
    yes: 'Yes, it is fixed',
    no: 'No, it is not fixed',
    rating: 'How did we do?',
    stars: ['1 – very poor', '2 – poor', '3 – fair', '4 – good', '5 – very good'],
    comment: 'Anything else you want to tell us (optional)',
    send: 'Send',
    sending: 'Sending…',
    needAll: 'Please say whether it is fixed and choose a rating.',
    thanks: 'Thank you. Your answer helps us improve.',
    reopened: 'Thank you for telling us. We have reopened ticket #{id}; the team will contact you.',
    answered: 'This survey has been answered already. Thank you.',
    cancelled: 'Ticket #{id} was reopened after this survey was sent, so there is nothing to answer here.',
    expiresAt: 'This link works until {when}.',
    invalid: 'This link is not valid. Please use the link in our message.',
    expired: 'This link has expired. If the problem is still there, reply to our message.',
    failed: 'Your answer could not be sent ({detail}). Please try again.',
  },
  zh: {
    title: '工单 #{id}：您的{device}恢复正常了吗？',
    done: '处理结果：{what}。',
    fixed: '问题真的解决了吗？',
    yes: '是的，已经解决',
    no: '没有，还没解决',
    rating: '您对我们的服务满意吗？',
    stars: ['1 分 – 很不满意', '2 分 – 不满意', '3 分 – 一般', '4 分 – 满意', '5 分 – 非常满意'],
    comment: '其他想告诉我们的（选填）',
    send: '提交',
    sending: '正在提交…',
    needAll: '请选择问题是否解决，并为我们打分。',
    thanks: '谢谢！您的反馈会帮助我们改进服务。',
    reopened: '感谢您的反馈。我们已重新打开工单 #{id}，客服人员会与您联系。',
    answered: '这份问卷已经提交过了，谢谢！',
    cancelled: '这份问卷发出后，工单 #{id} 已重新打开，无需再填写。',
    expiresAt: '此链接在 {when} 之前有效。',
    invalid: '此链接无效，请使用我们消息中的链接。',
    expired: '此链接已过期。如果问题仍然存在，请直接回复我们的消息。',
    failed: '提交失败（{detail}），请重试。',
  },
};

const root = document.getElementById('survey');
const token = decodeURIComponent(location.pathname.split('/').filter(Boolean).pop() || '');
let lang = (navigator.language || 'en').toLowerCase().startsWith('zh') ? 'zh' : 'en';

function say(key, values = {}) {
  return TEXT[lang][key].replace(/\{(\w+)\}/g, (_, k) => (k in values ? String(values[k]) : ''));
}

function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (name === 'testid') el.dataset.testid = value;
    else if (name.startsWith('on')) el.addEventListener(name.slice(2), value);
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  for (const child of children.flat()) if (child != null) el.append(child);
  return el;
}

function show(...children) {
  root.replaceChildren(...children);
}

function message(key, values, testid = 'survey-message') {
  show(h('p', { testid }, say(key, values)));
}

async function load() {
  let response;
  try {
    response = await fetch(`/survey/${encodeURIComponent(token)}/info`, { headers: { Accept: 'application/json' } });
  } catch (err) {
    message('failed', { detail: err.message });
    return;
  }
  if (response.status === 410) { message('expired', {}, 'survey-expired'); return; }
  if (!response.ok) { message('invalid', {}, 'survey-invalid'); return; }
  const info = await response.json();
  lang = info.locale.toLowerCase().startsWith('zh') ? 'zh' : 'en';
  document.documentElement.lang = info.locale;
  document.title = say('title', { id: info.ticket_id, device: info.device });
  if (info.cancelled) { message('cancelled', { id: info.ticket_id }); return; }
  if (info.answered) { message('answered', {}, 'survey-answered'); return; }
  form(info);
}

function choice(name, value, label, testid) {
  return h('label', {}, h('input', { type: 'radio', name, value, required: true, testid }), h('span', {}, label));
}

function form(info) {
  const status = h('p', { class: 'status', role: 'status', testid: 'survey-status' });
  const comment = h('textarea', { rows: 4, maxlength: 2000, id: 'comment', testid: 'survey-comment' });
  const send = h('button', { type: 'submit', testid: 'survey-submit' }, say('send'));
  const when = new Intl.DateTimeFormat(info.locale, { dateStyle: 'medium', timeStyle: 'short' })
    .format(new Date(info.expires_at));
  const el = h('form', { novalidate: true, onsubmit: (e) => { e.preventDefault(); submit(el, info, status, send, comment); } },
    h('fieldset', {}, h('legend', {}, say('fixed')),
      h('div', { class: 'choices' },
        choice('fixed', 'yes', say('yes'), 'survey-fixed-yes'),
        choice('fixed', 'no', say('no'), 'survey-fixed-no'))),
    h('fieldset', {}, h('legend', {}, say('rating')),
      h('div', { class: 'choices' },
        TEXT[lang].stars.map((label, i) => choice('rating', String(i + 1), label, `survey-rating-${i + 1}`)))),
    h('p', {}, h('label', { for: 'comment' }, say('comment')), comment),
    h('p', {}, send),
    status);
  show(
    h('h1', { testid: 'survey-title' }, say('title', { id: info.ticket_id, device: info.device })),
    h('p', { testid: 'survey-done' }, say('done', { what: info.what_was_done })),
    el,
    h('p', { class: 'muted' }, say('expiresAt', { when })));
}

async function submit(el, info, status, send, comment) {
  const fixed = el.querySelector('input[name="fixed"]:checked');
  const rating = el.querySelector('input[name="rating"]:checked');
  if (!fixed || !rating) {
    status.className = 'status error';
    status.textContent = say('needAll');
    return;
  }
  send.disabled = true;
  status.className = 'status';
  status.textContent = say('sending');
  try {
    const response = await fetch(`/survey/${encodeURIComponent(token)}`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: JSON.stringify({ fixed: fixed.value === 'yes', rating: Number(rating.value), comment: comment.value.trim() }),
    });
    const body = await response.json().catch(() => ({}));
    if (response.status === 409) { message('answered', {}, 'survey-answered'); return; }
    if (response.status === 410) { message('expired', {}, 'survey-expired'); return; }
    if (!response.ok) throw new Error(typeof body.detail === 'string' ? body.detail : `HTTP ${response.status}`);
    message(body.reopened ? 'reopened' : 'thanks', { id: info.ticket_id }, 'survey-thanks');
  } catch (err) {
    send.disabled = false;
    status.className = 'status error';
    status.textContent = say('failed', { detail: err.message });
  }
}

load();
