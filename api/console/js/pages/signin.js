// Sign-in: paste an API key, check it with GET /keys/me, keep it for this tab.

import { api, setKey } from '../api.js';
import { field, h } from '../dom.js';
import { t } from '../i18n.js';

export default {
  mount(root, { onSignedIn, message }) {
    const input = h('input', {
      type: 'password', name: 'key', autocomplete: 'off', spellcheck: 'false', required: true,
      testid: 'signin-key', class: 'wide',
    });
    const status = h('p', { class: 'form-status', role: 'status', testid: 'signin-status' }, message || '');
    const button = h('button', { type: 'submit', testid: 'signin-submit' }, t('signin.submit'));
    const form = h('form', { class: 'card signin', testid: 'signin-form', onsubmit: submit },
      h('h1', {}, t('signin.title')),
      h('p', {}, t('signin.intro')),
      field(t('signin.key'), input, t('signin.note')),
      h('div', { class: 'row' }, button),
      status);
    root.append(form);
    input.focus();

    async function submit(event) {
      event.preventDefault();
      const secret = input.value.trim();
      if (!secret) {
        status.textContent = t('signin.empty');
        return;
      }
      button.disabled = true;
      status.className = 'form-status';
      status.textContent = t('signin.checking');
      try {
        const me = await api('/keys/me', { key: secret });
        setKey(secret);
        onSignedIn(me);
      } catch (err) {
        status.className = 'form-status error';
        status.textContent = err.detail || String(err);
        button.disabled = false;
        input.select();
      }
    }
    return { destroy() {} };
  },
};
