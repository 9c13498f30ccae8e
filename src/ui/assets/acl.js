// Intentions and ACL tokens, policies and roles (list, create, edit, delete, live), and the
// login page that keeps a token in local storage.

import { h, render, notice } from './dom.js';
import { watch, get, request, saveToken, ApiError } from './api.js';

const names = (links) => (links || []).map((l) => l.Name).join(', ');
const links = (text) => text.split(',').map((n) => n.trim()).filter(Boolean).map((Name) => ({ Name }));

function field(f, value, editing) {
  const id = `field-${f.name}`;
  const attrs = { id, name: f.name, disabled: editing && f.fixed ? true : null, required: f.required || null };
  let input;
  if (f.options) input = h('select', attrs, f.options.map((o) => h('option', { value: o, selected: o === value || null }, o)));
  else if (f.multiline) input = h('textarea', { ...attrs, rows: 8, spellcheck: 'false' }, value || '');
  else input = h('input', { ...attrs, autocomplete: 'off', value: value || '' });
  return [h('label', { for: id }, f.label), input];
}

// A managed list: the rows of `spec.list` (live), a form to create one, and Edit and Delete
// on each row. `spec` names the columns and fields and how to save and remove.
async function managed(ctx, spec) {
  const status = h('div', { 'aria-live': 'polite' });
  const formArea = h('div', {});
  const list = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const open = async (item) => {
    const values = item ? await spec.values(item) : {};
    const form = h('form', { class: 'editor', id: `${spec.id}-form` },
      h('h2', {}, item ? `Edit ${spec.what}` : `Create ${spec.what}`),
      spec.fields.map((f) => field(f, values[f.name], !!item)),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Save'),
        h('button', { type: 'button', class: 'link', onclick: () => render(formArea) }, 'Cancel')));
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const data = Object.fromEntries(spec.fields.map((f) => [f.name, form.elements[f.name].value.trim()]));
      try {
        const saved = await spec.save(data, item);
        render(formArea);
        render(status, notice('info', 'Saved', spec.savedText ? spec.savedText(saved) : `The ${spec.what} was saved.`));
      } catch (err) {
        render(status, err instanceof ApiError && err.status !== 403
          ? notice('error', 'Not saved', err.message) : ctx.failure(err, `this ${spec.what}`));
      }
    });
    render(formArea, form);
    form.elements[0].focus();
  };
  render(ctx.main, h('h1', {}, spec.title),
    h('p', {}, h('button', { type: 'button', id: `${spec.id}-create`, onclick: () => open(null) }, `Create ${spec.what}`)),
    status, formArea, list);
  await watch(spec.list, ctx.signal, (items) => {
    if (!items.length) {
      render(list, h('p', { class: 'muted' }, `No ${spec.what}s yet.`));
      return;
    }
    render(list, h('table', { class: 'list', id: spec.id },
      h('thead', {}, h('tr', {}, spec.columns.map(([label]) => h('th', { scope: 'col' }, label)), h('th', { scope: 'col' }, 'Manage'))),
      h('tbody', {}, items.map((item) => h('tr', { dataset: { key: spec.key(item) } },
        spec.columns.map(([, cell]) => h('td', {}, cell(item))),
        h('td', { class: 'actions' },
          h('button', { type: 'button', onclick: () => open(item).catch((err) => render(status, ctx.failure(err, `this ${spec.what}`))) }, 'Edit'),
          h('button', {
            type: 'button', class: 'danger',
            onclick: async () => {
              if (!confirm(`Delete this ${spec.what} (${spec.key(item)})?`)) return;
              try {
                await spec.remove(item);
              } catch (err) {
                render(status, ctx.failure(err, `this ${spec.what}`));
              }
            },
          }, 'Delete')))))));
  }, (err) => render(list, ctx.failure(err, `${spec.what}s`)));
}

export function intentionsView(ctx) {
  const exact = (source, destination) =>
    `/v1/connect/intentions/exact?source=${encodeURIComponent(source)}&destination=${encodeURIComponent(destination)}`;
  return managed(ctx, {
    title: 'Intentions', what: 'intention', id: 'intentions', list: '/v1/connect/intentions',
    key: (i) => `${i.SourceName} → ${i.DestinationName}`,
    columns: [['Source', (i) => i.SourceName], ['Destination', (i) => i.DestinationName],
      ['Action', (i) => h('span', { class: `badge ${i.Action === 'allow' ? 'passing' : 'critical'}` }, i.Action || 'L7 permissions')],
      ['Description', (i) => i.Description || '']],
    fields: [{ name: 'source', label: 'Source service', required: true, fixed: true },
      { name: 'destination', label: 'Destination service', required: true, fixed: true },
      { name: 'action', label: 'Action', options: ['allow', 'deny'] },
      { name: 'description', label: 'Description' }],
    values: async (i) => ({ source: i.SourceName, destination: i.DestinationName, action: i.Action, description: i.Description }),
    save: (v, i) => request('PUT', exact(i ? i.SourceName : v.source, i ? i.DestinationName : v.destination),
      { body: { Action: v.action, Description: v.description } }),
    remove: (i) => request('DELETE', exact(i.SourceName, i.DestinationName)),
  });
}

export function tokensView(ctx) {
  const body = (v) => ({ Description: v.description, Policies: links(v.policies), Roles: links(v.roles) });
  return managed(ctx, {
    title: 'Tokens', what: 'token', id: 'tokens', list: '/v1/acl/tokens',
    key: (t) => t.AccessorID,
    columns: [['Accessor ID', (t) => h('span', { class: 'mono' }, t.AccessorID)], ['Description', (t) => t.Description || ''],
      ['Policies', (t) => names(t.Policies)], ['Roles', (t) => names(t.Roles)]],
    fields: [{ name: 'description', label: 'Description' },
      { name: 'policies', label: 'Policies (names, comma-separated)' },
      { name: 'roles', label: 'Roles (names, comma-separated)' }],
    values: async (t) => ({ description: t.Description, policies: names(t.Policies), roles: names(t.Roles) }),
    save: async (v, t) => (await request('PUT', t ? `/v1/acl/token/${t.AccessorID}` : '/v1/acl/token',
      { body: t ? { AccessorID: t.AccessorID, ...body(v) } : body(v) })).data,
    savedText: (t) => `Token ${t.AccessorID} saved; its secret is ${t.SecretID}.`,
    remove: (t) => request('DELETE', `/v1/acl/token/${t.AccessorID}`),
  });
}

export function policiesView(ctx) {
  return managed(ctx, {
    title: 'Policies', what: 'policy', id: 'policies', list: '/v1/acl/policies',
    key: (p) => p.Name,
    columns: [['Name', (p) => p.Name], ['Description', (p) => p.Description || '']],
    fields: [{ name: 'name', label: 'Name', required: true }, { name: 'description', label: 'Description' },
      { name: 'rules', label: 'Rules (HCL or JSON)', multiline: true }],
    values: async (p) => {
      const full = (await get(`/v1/acl/policy/${p.ID}`)).data;
      return { name: full.Name, description: full.Description, rules: full.Rules };
    },
    save: (v, p) => request('PUT', p ? `/v1/acl/policy/${p.ID}` : '/v1/acl/policy',
      { body: { Name: v.name, Description: v.description, Rules: v.rules } }),
    remove: (p) => request('DELETE', `/v1/acl/policy/${p.ID}`),
  });
}

export function rolesView(ctx) {
  return managed(ctx, {
    title: 'Roles', what: 'role', id: 'roles', list: '/v1/acl/roles',
    key: (r) => r.Name,
    columns: [['Name', (r) => r.Name], ['Description', (r) => r.Description || ''], ['Policies', (r) => names(r.Policies)]],
    fields: [{ name: 'name', label: 'Name', required: true }, { name: 'description', label: 'Description' },
      { name: 'policies', label: 'Policies (names, comma-separated)' }],
    values: async (r) => ({ name: r.Name, description: r.Description, policies: names(r.Policies) }),
    save: (v, r) => request('PUT', r ? `/v1/acl/role/${r.ID}` : '/v1/acl/role',
      { body: { Name: v.name, Description: v.description, Policies: links(v.policies) } }),
    remove: (r) => request('DELETE', `/v1/acl/role/${r.ID}`),
  });
}

export function loginView(ctx) {
  const status = h('div', { 'aria-live': 'polite' });
  const secret = h('input', { id: 'token-secret', type: 'password', autocomplete: 'off', required: true });
  const form = h('form', { class: 'editor', id: 'login-form' },
    h('label', { for: 'token-secret' }, 'Token (Secret ID)'), secret,
    h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'login' }, 'Log in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    try {
      const self = (await get('/v1/acl/token/self', { secret: secret.value.trim() })).data;
      saveToken({ AccessorID: self.AccessorID, SecretID: self.SecretID });
      ctx.navigate('services');
    } catch (err) {
      render(status, notice('error', 'Not logged in', err instanceof ApiError && err.status === 404
        ? 'That token is not known to this agent.' : err.message));
    }
  });
  render(ctx.main, h('h1', {}, 'Log in'),
    h('p', {}, 'With ACLs on, what you see depends on your token. It is kept in this browser\'s local storage.'),
    status, form);
  secret.focus();
}
