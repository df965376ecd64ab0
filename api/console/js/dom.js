// Building and patching DOM without innerHTML: every value goes in as text.

/** An element: h('a', {href: '#/x', class: 'y', testid: 'z', onclick: fn}, 'text', child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value == null || value === false) continue;
    if (name === 'class') el.className = Array.isArray(value) ? value.filter(Boolean).join(' ') : value;
    else if (name === 'testid') el.dataset.testid = value;
    else if (name === 'dataset') Object.assign(el.dataset, value);
    // Styles through the CSSOM: the Content-Security-Policy refuses style="..." attributes.
    else if (name === 'style') Object.assign(el.style, value);
    else if (name.startsWith('on') && typeof value === 'function') {
      el.addEventListener(name.slice(2), value);
    } else if (name === 'value' && (tag === 'textarea' || tag === 'select')) {
      el.dataset.initialValue = value;
    } else if (value === true) el.setAttribute(name, '');
    else el.setAttribute(name, String(value));
  }
  append(el, children);
  if (el.dataset.initialValue !== undefined) {
    el.value = el.dataset.initialValue;
    delete el.dataset.initialValue;
  }
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/**
 * Replace `container`'s children with `children`, unless nothing would change: a poll that
 * brings the same data leaves the DOM, the focus and any text selection alone. When it does
 * change, focus returns to the element with the same data-focus-key.
 */
export function patch(container, ...children) {
  const next = document.createElement(container.tagName);
  append(next, children);
  if (next.innerHTML === container.innerHTML) return false;
  const active = document.activeElement;
  const key = active && container.contains(active) ? active.dataset.focusKey : undefined;
  container.replaceChildren(...next.childNodes);
  if (key) container.querySelector(`[data-focus-key="${CSS.escape(key)}"]`)?.focus();
  return true;
}

/** A <dl> of [label, value] pairs, leaving out pairs whose value is undefined. */
export function facts(pairs, attrs = {}) {
  return h('dl', { class: 'facts', ...attrs },
    pairs.filter(([, v]) => v !== undefined).map(([label, value, testid]) => h('div', { testid },
      h('dt', {}, label), h('dd', {}, value ?? '—'))));
}

/** A table with a caption and column headers; `rows` are <tr> elements. */
export function table({ caption, columns, rows, testid, captionHidden = false, bodyTestid }) {
  return h('table', { testid },
    caption ? h('caption', { class: captionHidden ? 'visually-hidden' : null }, caption) : null,
    h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h('tbody', { testid: bodyTestid }, rows));
}

/** A label and its control, tied by id. */
let uid = 0;
export function field(label, control, help) {
  const id = control.id || `f${++uid}`;
  control.id = id;
  const helpEl = help ? h('small', { id: `${id}-help`, class: 'help' }, help) : null;
  if (helpEl) control.setAttribute('aria-describedby', helpEl.id);
  return h('div', { class: 'field' }, h('label', { for: id }, label), control, helpEl);
}

/** A <select> of [value, label] options with `selected` chosen. */
export function select(options, selected, attrs = {}) {
  return h('select', attrs, options.map(([value, label]) =>
    h('option', { value, selected: String(value) === String(selected ?? '') }, label)));
}
