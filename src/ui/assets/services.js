// Services: the list (health counts, tags, search and filters, live) and a service's page
// (its instances with every check and its output, its intentions, its gateways).

import { h, render, notice, status, pairs, tags } from './dom.js';
import { watch, encodePath } from './api.js';

function health(summary) {
  if (summary.ChecksCritical > 0) return 'critical';
  if (summary.ChecksWarning > 0) return 'warning';
  return 'passing';
}

function counts(s) {
  return h('span', { class: 'counts' },
    s.ChecksPassing ? status('passing', s.ChecksPassing) : null,
    s.ChecksWarning ? status('warning', s.ChecksWarning) : null,
    s.ChecksCritical ? status('critical', s.ChecksCritical) : null,
    !s.ChecksPassing && !s.ChecksWarning && !s.ChecksCritical ? h('span', { class: 'muted' }, 'no checks') : null);
}

export async function servicesView(ctx) {
  const search = h('input', { id: 'search', type: 'search', placeholder: 'Name or tag', autocomplete: 'off' });
  const byHealth = h('select', { id: 'health' },
    ['', 'passing', 'warning', 'critical'].map((v) => h('option', { value: v }, v || 'Any health')));
  const byTag = h('select', { id: 'tag' }, h('option', { value: '' }, 'Any tag'));
  const summary = h('p', { class: 'muted', id: 'count', 'aria-live': 'polite' });
  const body = h('tbody', {});
  const table = h('table', { class: 'list', id: 'services' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Service'), h('th', { scope: 'col' }, 'Health checks'),
      h('th', { scope: 'col' }, 'Instances'), h('th', { scope: 'col' }, 'Tags'))),
    body);
  const area = h('div', {});
  render(ctx.main,
    h('h1', {}, 'Services'),
    h('form', { class: 'filters', role: 'search', onsubmit: (e) => e.preventDefault() },
      h('label', {}, 'Search ', search), h('label', {}, 'Health ', byHealth), h('label', {}, 'Tag ', byTag)),
    summary, area);
  let services = [];

  const draw = () => {
    const q = search.value.trim().toLowerCase();
    const want = byHealth.value;
    const tag = byTag.value;
    const shown = services.filter((s) =>
      (!q || s.Name.toLowerCase().includes(q) || (s.Tags || []).some((t) => t.toLowerCase().includes(q)))
      && (!want || health(s) === want)
      && (!tag || (s.Tags || []).includes(tag)));
    const rows = shown.map((s) => h('tr', { dataset: { service: s.Name, health: health(s) } },
      h('th', { scope: 'row' }, h('a', { href: ctx.href(`services/${encodeURIComponent(s.Name)}`) }, s.Name),
        s.Kind ? h('span', { class: 'kind' }, s.Kind) : null),
      h('td', {}, counts(s)),
      h('td', {}, String(s.InstanceCount)),
      h('td', {}, tags(s.Tags))));
    body.replaceChildren(...rows);
    summary.textContent = `${shown.length} of ${services.length} services`;
    if (area.firstChild !== table) render(area, table);
    performance.mark('services-rendered');
  };
  for (const control of [search, byHealth, byTag]) control.addEventListener('input', draw);

  await watch('/v1/internal/ui/services', ctx.signal, (data) => {
    // Sidecar proxies are shown on the service they front, as Consul's UI does.
    services = data.filter((s) => s.Kind !== 'connect-proxy');
    const chosen = byTag.value;
    const all = [...new Set(services.flatMap((s) => s.Tags || []))].sort();
    render(byTag, h('option', { value: '' }, 'Any tag'), all.map((t) => h('option', { value: t }, t)));
    byTag.value = all.includes(chosen) ? chosen : '';
    draw();
  }, (err) => render(area, ctx.failure(err, 'services')));
}

function check(c) {
  return h('li', { class: `check ${c.Status}`, dataset: { check: c.CheckID } },
    h('div', { class: 'check-head' }, status(c.Status), h('strong', {}, c.Name),
      h('span', { class: 'muted' }, ` ${c.CheckID}${c.ServiceID ? '' : ' (node)'}`)),
    c.Notes ? h('p', {}, c.Notes) : null,
    h('pre', { class: 'output', tabindex: 0, 'aria-label': `Output of ${c.Name}` }, c.Output || 'No output'));
}

export function checkList(checks) {
  if (!checks.length) return h('p', { class: 'muted' }, 'No checks');
  return h('ul', { class: 'checks' }, checks.map(check));
}

function instance(ctx, e) {
  const address = e.Service.Address || e.Node.Address;
  return h('article', { class: 'card instance', dataset: { instance: e.Service.ID } },
    h('h3', {}, e.Service.ID),
    h('dl', { class: 'pairs' },
      h('dt', {}, 'Node'), h('dd', {}, h('a', { href: ctx.href(`nodes/${encodeURIComponent(e.Node.Node)}`) }, e.Node.Node)),
      h('dt', {}, 'Address'), h('dd', { class: 'address' }, e.Service.Port ? `${address}:${e.Service.Port}` : address)),
    tags(e.Service.Tags),
    h('h4', {}, 'Meta'), pairs(e.Service.Meta),
    h('h4', {}, 'Checks'), checkList(e.Checks));
}

function section(title, id) {
  const body = h('div', { class: 'section-body' }, h('p', { class: 'loading' }, 'Loading…'));
  return [h('section', { id }, h('h2', {}, title), body), body];
}

export async function serviceView(ctx) {
  const name = ctx.params.name;
  const [instances, instancesBody] = section('Instances', 'instances');
  const [intentions, intentionsBody] = section('Intentions', 'intentions');
  const [gateways, gatewaysBody] = section('Gateways', 'gateways');
  render(ctx.main,
    h('p', { class: 'crumbs' }, h('a', { href: ctx.href('services') }, 'Services'), ' / '),
    h('h1', {}, name), instances, intentions, gateways);
  const path = encodePath(name);
  const filter = encodeURIComponent(`SourceName == "${name}" or DestinationName == "${name}"`);
  await Promise.all([
    watch(`/v1/health/service/${path}`, ctx.signal, (list) => {
      if (!list.length) render(instancesBody, notice('info', 'No instances', `No instance of ${name} is registered.`));
      else render(instancesBody, list.map((e) => instance(ctx, e)));
      const kind = list.length ? list[0].Service.Kind : '';
      if (kind === 'ingress-gateway' || kind === 'terminating-gateway') fronted(ctx, name, gatewaysBody);
    }, (err) => render(instancesBody, ctx.failure(err, 'this service'))),
    watch(`/v1/connect/intentions?filter=${filter}`, ctx.signal, (list) => {
      render(intentionsBody, list.length ? intentionTable(list) : h('p', { class: 'muted' }, 'No intentions name this service.'));
    }, (err) => render(intentionsBody, ctx.failure(err, 'intentions'))),
    watch(`/v1/health/ingress/${path}`, ctx.signal, (list) => {
      if (gatewaysBody.dataset.fronts) return;
      const names = [...new Set(list.map((e) => e.Service.Service))];
      render(gatewaysBody, names.length
        ? h('ul', {}, names.map((n) => h('li', {}, h('a', { href: ctx.href(`services/${encodeURIComponent(n)}`) }, n))))
        : h('p', { class: 'muted' }, 'No gateway fronts this service.'));
    }, (err) => render(gatewaysBody, ctx.failure(err, 'gateways'))),
  ]);
}

// A gateway's page lists the services it fronts, with the addresses it serves them on.
function fronted(ctx, name, body) {
  if (body.dataset.fronts) return;
  body.dataset.fronts = 'yes';
  watch(`/v1/internal/ui/gateway-services-nodes/${encodePath(name)}`, ctx.signal, (list) => {
    render(body, list.length
      ? h('ul', {}, list.map((s) => h('li', {}, h('a', { href: ctx.href(`services/${encodeURIComponent(s.Name)}`) }, s.Name),
        ' ', (s.GatewayConfig.Addresses || []).join(', '))))
      : h('p', { class: 'muted' }, 'This gateway fronts no service.'));
  }, (err) => render(body, ctx.failure(err, 'the gateway\'s services')));
}

export function intentionTable(list, actions) {
  return h('table', { class: 'list' },
    h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Source'), h('th', { scope: 'col' }, 'Destination'),
      h('th', { scope: 'col' }, 'Action'), h('th', { scope: 'col' }, 'Description'), actions ? h('th', { scope: 'col' }, 'Manage') : null)),
    h('tbody', {}, list.map((i) => h('tr', { dataset: { intention: `${i.SourceName}>${i.DestinationName}` } },
      h('td', {}, i.SourceName), h('td', {}, i.DestinationName),
      h('td', {}, h('span', { class: `badge ${i.Action === 'allow' ? 'passing' : 'critical'}` }, i.Action || 'L7 permissions')),
      h('td', {}, i.Description || ''),
      actions ? h('td', {}, actions(i)) : null))));
}
