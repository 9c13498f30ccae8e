// Key/Value: folders (live), creating, editing with `?cas=` set to the index that was read
// (so a second editor gets a conflict instead of silently overwriting), deleting (folders
// recursively, after confirmation), flags, JSON and YAML values shown formatted, and the
// session holding a locked key.

import { h, render, notice } from './dom.js';
import { watch, get, request, encodePath, ApiError } from './api.js';

function decode(base64) {
  if (!base64) return '';
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  return new TextDecoder().decode(bytes);
}

// The value pretty-printed when it is JSON; YAML (a document marker or `key: value` lines)
// is shown as written, labelled; anything else gets no formatted view.
function formatted(text) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  try {
    const parsed = JSON.parse(trimmed);
    if (typeof parsed === 'object' && parsed !== null) return ['JSON', JSON.stringify(parsed, null, 2)];
  } catch {
    // Not JSON.
  }
  const lines = trimmed.split('\n').filter((l) => l.trim() && !l.trim().startsWith('#'));
  const yamlish = /^(---|[\w.-]+:(\s|$)|- )/;
  if (trimmed.startsWith('---') || (lines.length && lines.every((l) => yamlish.test(l.trim())))) return ['YAML', trimmed];
  return null;
}

function crumbs(ctx, prefix) {
  const parts = prefix.split('/').filter(Boolean);
  const out = [h('a', { href: ctx.href('kv/') }, 'Key/Value')];
  let path = '';
  for (const p of parts) {
    path += `${p}/`;
    out.push(' / ', h('a', { href: ctx.href(`kv/${encodePath(path)}`) }, p));
  }
  return h('p', { class: 'crumbs' }, out);
}

export async function kvView(ctx) {
  const rest = ctx.params.rest || '';
  if (rest === 'create' || rest.endsWith('/create')) return createView(ctx, rest.slice(0, -'create'.length));
  if (rest.endsWith('/edit')) return editView(ctx, rest.slice(0, -'/edit'.length));
  return folderView(ctx, rest);
}

async function remove(ctx, key, folder) {
  const what = folder ? `the folder ${key} and every key under it` : `the key ${key}`;
  if (!confirm(`Delete ${what}?`)) return false;
  await request('DELETE', `/v1/kv/${encodePath(key)}${folder ? '?recurse' : ''}`);
  return true;
}

async function folderView(ctx, prefix) {
  const list = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const status = h('div', { 'aria-live': 'polite' });
  render(ctx.main, crumbs(ctx, prefix), h('h1', {}, prefix || 'Key/Value'),
    h('p', {}, h('a', { class: 'button', id: 'kv-create', href: ctx.href(`kv/${encodePath(prefix)}create`) }, 'Create')),
    status, list);
  await watch(`/v1/kv/${encodePath(prefix)}?keys&separator=/`, ctx.signal, (keys) => {
    const rows = keys.filter((k) => k !== prefix).map((key) => {
      const folder = key.endsWith('/');
      const label = key.slice(prefix.length);
      const target = folder ? `kv/${encodePath(key)}` : `kv/${encodePath(key)}/edit`;
      return h('tr', { dataset: { key } },
        h('th', { scope: 'row' }, h('a', { href: ctx.href(target) }, label)),
        h('td', {}, folder ? 'folder' : 'key'),
        h('td', {}, h('button', {
          type: 'button', class: 'danger', 'aria-label': `Delete ${key}`,
          onclick: async () => {
            try {
              if (await remove(ctx, key, folder)) render(status, notice('info', 'Deleted', `${key} was deleted.`));
            } catch (err) {
              render(status, ctx.failure(err, key));
            }
          },
        }, 'Delete')));
    });
    render(list, rows.length
      ? h('table', { class: 'list', id: 'kv-list' },
        h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Name'), h('th', { scope: 'col' }, 'Kind'), h('th', { scope: 'col' }, 'Manage'))),
        h('tbody', {}, rows))
      : h('p', { class: 'muted' }, 'No keys here yet.'));
  }, (err) => render(list, ctx.failure(err, 'these keys')), { missing: [] });
}

function editor(value, flags) {
  return [
    h('label', { for: 'kv-value' }, 'Value'),
    h('textarea', { id: 'kv-value', rows: 10, spellcheck: 'false' }, value),
    h('label', { for: 'kv-flags' }, 'Flags'),
    h('input', { id: 'kv-flags', type: 'number', min: 0, value: String(flags) }),
  ];
}

function flagsOf(form) {
  const flags = form.querySelector('#kv-flags').value.trim();
  return /^\d+$/.test(flags) ? flags : '0';
}

async function createView(ctx, prefix) {
  const status = h('div', { 'aria-live': 'polite' });
  const form = h('form', { class: 'editor', id: 'kv-form' },
    h('label', { for: 'kv-key' }, `Key or folder (ending in /) under ${prefix || 'the root'}`),
    h('input', { id: 'kv-key', required: true, autocomplete: 'off' }),
    editor('', 0),
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'kv-save' }, 'Save'),
      h('a', { href: ctx.href(`kv/${encodePath(prefix)}`) }, 'Cancel')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const key = prefix + form.querySelector('#kv-key').value.trim();
    const value = key.endsWith('/') ? '' : form.querySelector('#kv-value').value;
    try {
      // cas=0 creates only: an existing key is reported, not overwritten.
      const got = await request('PUT', `/v1/kv/${encodePath(key)}?cas=0&flags=${flagsOf(form)}`, { body: value });
      if (got.data === false) {
        render(status, notice('error', 'Key exists', `${key} already exists; open it to edit it.`));
        return;
      }
      const folder = key.endsWith('/') ? key : key.slice(0, key.lastIndexOf('/') + 1);
      ctx.navigate(`kv/${encodePath(folder)}`);
    } catch (err) {
      render(status, ctx.failure(err, key));
    }
  });
  render(ctx.main, crumbs(ctx, prefix), h('h1', {}, 'Create a key'), status, form);
  form.querySelector('#kv-key').focus();
}

async function editView(ctx, key) {
  let entry;
  try {
    entry = (await get(`/v1/kv/${encodePath(key)}`, { signal: ctx.signal })).data[0];
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) {
      render(ctx.main, crumbs(ctx, key), notice('info', 'No such key', `${key} does not exist (any more).`));
      return;
    }
    throw err;
  }
  const folder = key.slice(0, key.lastIndexOf('/') + 1);
  const value = decode(entry.Value);
  const shown = formatted(value);
  const status = h('div', { 'aria-live': 'polite', id: 'kv-status' });
  let readIndex = entry.ModifyIndex;
  const form = h('form', { class: 'editor', id: 'kv-form' }, editor(value, entry.Flags),
    h('div', { class: 'actions' },
      h('button', { type: 'submit', id: 'kv-save' }, 'Save'),
      h('button', {
        type: 'button', class: 'danger', id: 'kv-delete',
        onclick: async () => {
          try {
            if (await remove(ctx, key, false)) ctx.navigate(`kv/${encodePath(folder)}`);
          } catch (err) {
            render(status, ctx.failure(err, key));
          }
        },
      }, 'Delete')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const body = form.querySelector('#kv-value').value;
    try {
      const got = await request('PUT', `/v1/kv/${encodePath(key)}?cas=${readIndex}&flags=${flagsOf(form)}`, { body });
      if (got.data === false) {
        render(status, h('section', { class: 'notice error', id: 'kv-conflict', role: 'alert' },
          h('h2', {}, 'Conflict: the key changed'),
          h('p', {}, `Someone else saved ${key} after you opened it (you read it at index ${readIndex}). Your change was not saved.`),
          h('button', { type: 'button', onclick: () => ctx.navigate(`kv/${encodePath(key)}/edit`, { replace: true }) }, 'Load the current value')));
        return;
      }
      readIndex = (await get(`/v1/kv/${encodePath(key)}`)).data[0].ModifyIndex;
      render(status, notice('info', 'Saved', `${key} was saved.`));
    } catch (err) {
      render(status, ctx.failure(err, key));
    }
  });
  const session = entry.Session ? h('p', { id: 'kv-session', class: 'notice info' }, 'Locked by session ',
    h('span', { class: 'mono' }, entry.Session), ' (lock index ', String(entry.LockIndex), ')') : null;
  render(ctx.main, crumbs(ctx, folder), h('h1', {}, key), session, status,
    shown ? h('section', { id: 'kv-formatted' }, h('h2', {}, `Value (${shown[0]})`), h('pre', { class: 'output', tabindex: 0 }, shown[1])) : null,
    h('h2', {}, 'Edit'), form);
  if (entry.Session) {
    try {
      const info = (await get(`/v1/session/info/${entry.Session}`)).data;
      if (info && info[0]) session.append(' held on node ', h('a', { href: ctx.href(`nodes/${encodeURIComponent(info[0].Node)}`) }, info[0].Node));
    } catch {
      // The session's node is extra detail; the ID is already shown.
    }
  }
}
