// Building DOM nodes without a framework: h(tag, attributes, ...children).
// Attributes starting with "on" become event listeners; children may be nodes, strings,
// numbers, arrays (flattened) or null/false (skipped). Text always goes in as text, never HTML.

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith('on')) el.addEventListener(name.slice(2).toLowerCase(), value);
    else if (name === 'dataset') Object.assign(el.dataset, value);
    else if (name === 'value') el.value = value;
    else el.setAttribute(name, value === true ? '' : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

// Replaces everything inside `el`.
export function render(el, ...children) {
  el.replaceChildren();
  append(el, children);
}

// A panel for what the token may not see, or for an error worth saying.
export function notice(kind, title, text, action) {
  return h('section', { class: `notice ${kind}`, role: kind === 'error' ? 'alert' : 'status' },
    h('h2', {}, title), text ? h('p', {}, text) : null, action || null);
}

// Health status as a badge: text and colour, so it doesn't rely on colour alone.
export function status(value, count) {
  const label = count === undefined ? value : `${count} ${value}`;
  return h('span', { class: `badge ${value}`, title: value }, label);
}

// A definition list of a string map (meta, tagged addresses).
export function pairs(map) {
  const entries = Object.entries(map || {});
  if (!entries.length) return h('p', { class: 'muted' }, 'None');
  return h('dl', { class: 'pairs' }, entries.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)]));
}

export function tags(list) {
  if (!list || !list.length) return null;
  return h('ul', { class: 'tags' }, list.map((t) => h('li', {}, t)));
}
