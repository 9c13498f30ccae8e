// Nodes: the list with each node's health (live), and a node's page with its services,
// checks, metadata and the sessions (locks) it holds.

import { h, render, notice, status, pairs, tags } from './dom.js';
import { watch, request, encodePath } from './api.js';
import { checkList } from './services.js';

const RANK = { passing: 0, warning: 1, critical: 2 };

function worst(checks) {
  return checks.reduce((w, c) => (RANK[c.Status] > RANK[w] ? c.Status : w), 'passing');
}

export async function nodesView(ctx) {
  const search = h('input', { id: 'search', type: 'search', placeholder: 'Name or address', autocomplete: 'off' });
  const body = h('tbody', {});
  const area = h('div', {},
    h('table', { class: 'list', id: 'nodes' },
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Node'), h('th', { scope: 'col' }, 'Health'),
        h('th', { scope: 'col' }, 'Address'), h('th', { scope: 'col' }, 'Services'))),
      body));
  render(ctx.main, h('h1', {}, 'Nodes'),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() }, h('label', {}, 'Search ', search)),
    area);
  let nodes = [];
  const draw = () => {
    const q = search.value.trim().toLowerCase();
    body.replaceChildren(...nodes
      .filter((n) => !q || n.Node.toLowerCase().includes(q) || n.Address.includes(q))
      .map((n) => {
        const state = worst(n.Checks);
        return h('tr', { dataset: { node: n.Node, health: state } },
          h('th', { scope: 'row' }, h('a', { href: ctx.href(`nodes/${encodeURIComponent(n.Node)}`) }, n.Node)),
          h('td', {}, status(state)), h('td', {}, n.Address), h('td', {}, String(n.Services.length)));
      }));
  };
  search.addEventListener('input', draw);
  await watch('/v1/internal/ui/nodes', ctx.signal, (data) => {
    nodes = data;
    draw();
  }, (err) => render(area, ctx.failure(err, 'nodes')));
}

function servicesTable(ctx, services) {
  if (!services.length) return h('p', { class: 'muted' }, 'No services');
  return h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'ID'),
      h('th', { scope: 'col' }, 'Port'), h('th', { scope: 'col' }, 'Tags'))),
    h('tbody', {}, services.map((s) => h('tr', {},
      h('th', { scope: 'row' }, h('a', { href: ctx.href(`services/${encodeURIComponent(s.Service)}`) }, s.Service)),
      h('td', {}, s.ID), h('td', {}, s.Port ? String(s.Port) : ''), h('td', {}, tags(s.Tags))))));
}

function sessionsTable(sessions) {
  if (!sessions.length) return h('p', { class: 'muted' }, 'This node holds no sessions.');
  return h('table', { class: 'list', id: 'sessions' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Session'), h('th', { scope: 'col' }, 'Name'),
      h('th', { scope: 'col' }, 'Behavior'), h('th', { scope: 'col' }, 'TTL'), h('th', { scope: 'col' }, 'Checks'),
      h('th', { scope: 'col' }, 'Manage'))),
    h('tbody', {}, sessions.map((s) => h('tr', { dataset: { session: s.ID } },
      h('td', { class: 'mono' }, s.ID), h('td', {}, s.Name || ''), h('td', {}, s.Behavior), h('td', {}, s.TTL || '—'),
      h('td', {}, [...(s.NodeChecks || []), ...(s.ServiceChecks || []).map((c) => c.ID)].join(', ')),
      h('td', {}, h('button', {
        type: 'button', class: 'danger',
        onclick: async () => {
          if (confirm(`Invalidate session ${s.ID}? Its locks are released.`)) await request('PUT', `/v1/session/destroy/${s.ID}`);
        },
      }, 'Invalidate'))))));
}

export async function nodeView(ctx) {
  const name = ctx.params.name;
  const content = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  const sessions = h('div', {}, h('p', { class: 'loading' }, 'Loading…'));
  render(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: ctx.href('nodes') }, 'Nodes'), ' / '),
    h('h1', {}, name), content,
    h('section', { id: 'lock-sessions' }, h('h2', {}, 'Lock sessions'), sessions));
  await Promise.all([
    watch(`/v1/internal/ui/node/${encodePath(name)}`, ctx.signal, (n) => {
      render(content,
        h('p', {}, status(worst(n.Checks)), ' ', h('span', { class: 'address' }, n.Address)),
        h('section', { id: 'node-services' }, h('h2', {}, 'Services'), servicesTable(ctx, n.Services)),
        h('section', { id: 'node-checks' }, h('h2', {}, 'Health checks'), checkList(n.Checks)),
        h('section', { id: 'node-meta' }, h('h2', {}, 'Metadata'), pairs(n.Meta),
          h('h3', {}, 'Tagged addresses'), pairs(n.TaggedAddresses)));
    }, (err) => render(content, err.status === 404
      ? notice('info', 'No such node', `No node named ${name} is registered.`)
      : ctx.failure(err, 'this node'))),
    watch(`/v1/session/node/${encodePath(name)}`, ctx.signal, (list) => render(sessions, sessionsTable(list)),
      (err) => render(sessions, ctx.failure(err, 'this node\'s sessions'))),
  ]);
}
