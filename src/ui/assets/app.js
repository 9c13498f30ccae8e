// The UI's entry: navigation, the route table, the token status, and what every view shares.

import { h, render, notice } from './dom.js';
import { base, get, savedToken, saveToken, ApiError } from './api.js';
import { servicesView, serviceView } from './services.js';
import { nodesView, nodeView } from './nodes.js';
import { kvView } from './kv.js';
import { intentionsView, tokensView, policiesView, rolesView, loginView } from './acl.js';

const main = document.getElementById('main');
const nav = document.getElementById('nav');
let current = null; // the running view's AbortController
let aclsEnabled = false;
let datacenter = 'dc1';

// Routes under /<base>/<dc>/: [pattern, view]; ":name" takes one segment, "*rest" the rest.
const ROUTES = [
  ['services', servicesView],
  ['services/:name', serviceView],
  ['services/:name/*rest', serviceView],
  ['nodes', nodesView],
  ['nodes/:name', nodeView],
  ['nodes/:name/*rest', nodeView],
  ['kv', kvView],
  ['kv/*rest', kvView],
  ['intentions', intentionsView],
  ['acls/tokens', tokensView],
  ['acls/policies', policiesView],
  ['acls/roles', rolesView],
  ['login', loginView],
];

function match(path) {
  const parts = path.split('/');
  for (const [pattern, view] of ROUTES) {
    const want = pattern.split('/');
    const params = {};
    let i = 0;
    for (; i < want.length; i++) {
      const w = want[i];
      if (w.startsWith('*')) {
        params[w.slice(1)] = parts.slice(i).map(decodeURIComponent).join('/');
        return { view, params };
      }
      if (i >= parts.length || parts[i] === '') break;
      if (w.startsWith(':')) params[w.slice(1)] = decodeURIComponent(parts[i]);
      else if (w !== parts[i]) break;
    }
    const exact = parts.length === want.length || (parts.length === want.length + 1 && parts[want.length] === '');
    if (i === want.length && exact) return { view, params };
  }
  return null;
}

export function href(path) {
  return `${base}${encodeURIComponent(datacenter)}/${path}`;
}

export function navigate(path, { replace = false } = {}) {
  const url = path.startsWith('/') ? path : href(path);
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  route();
}

// What a view shows when a read fails: a 403 is what the token may not see, said as such.
function failure(err, what) {
  if (err instanceof ApiError && err.status === 403) {
    const token = savedToken();
    return notice('denied', 'No access',
      `${token ? 'Your token' : 'Without a token you'} may not read ${what}.`,
      aclsEnabled ? h('p', {}, h('a', { href: href('login') }, token ? 'Use another token' : 'Log in')) : null);
  }
  if (err instanceof ApiError && err.status === 401) {
    return notice('info', 'ACLs are disabled', 'This agent runs without ACLs, so there is nothing to manage here.');
  }
  return notice('error', `Could not read ${what}`, err.message);
}

function drawNav(section) {
  const item = (path, label, key) => h('a', {
    href: href(path), 'aria-current': section === key ? 'page' : null,
  }, label);
  const token = savedToken();
  render(nav,
    item('services', 'Services', 'services'),
    item('nodes', 'Nodes', 'nodes'),
    item('kv', 'Key/Value', 'kv'),
    item('intentions', 'Intentions', 'intentions'),
    aclsEnabled ? [
      item('acls/tokens', 'Tokens', 'acls'),
      item('acls/policies', 'Policies', 'acls'),
      item('acls/roles', 'Roles', 'acls'),
      token
        ? h('button', { type: 'button', class: 'link', id: 'logout', onclick: () => { saveToken(null); navigate('services'); } }, 'Log out')
        : item('login', 'Log in', 'login'),
    ] : null);
}

async function route() {
  if (current) current.abort();
  current = new AbortController();
  const rest = location.pathname.startsWith(base) ? location.pathname.slice(base.length) : '';
  const slash = rest.indexOf('/');
  if (!rest || slash < 0) {
    navigate('services', { replace: true });
    return;
  }
  datacenter = decodeURIComponent(rest.slice(0, slash));
  const path = rest.slice(slash + 1);
  const found = match(path);
  const section = path.split('/')[0];
  drawNav(section);
  if (!found) {
    render(main, notice('error', 'Page not found', `Nothing lives at ${location.pathname}.`));
    return;
  }
  const ctx = {
    main, params: found.params, signal: current.signal, dc: datacenter, aclsEnabled,
    href, navigate, failure, refreshNav: () => drawNav(section),
  };
  render(main);
  try {
    await found.view(ctx);
  } catch (err) {
    if (!ctx.signal.aborted) render(main, failure(err, 'this page'));
  }
}

// Same-origin links inside the UI navigate without reloading.
document.addEventListener('click', (event) => {
  const link = event.target.closest('a[href]');
  if (!link || event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey) return;
  const url = new URL(link.href, location.href);
  if (url.origin !== location.origin || !url.pathname.startsWith(base)) return;
  event.preventDefault();
  history.pushState(null, '', url.pathname + url.search);
  route();
  main.focus({ preventScroll: true });
});
window.addEventListener('popstate', route);

async function start() {
  // ACLs are on when the token endpoint answers anything but "ACL support disabled".
  try {
    await get('/v1/acl/token/self');
    aclsEnabled = true;
  } catch (err) {
    aclsEnabled = !(err instanceof ApiError && err.status === 401);
  }
  if (location.pathname === base || location.pathname === base.slice(0, -1)) {
    try {
      const dcs = (await get('/v1/catalog/datacenters')).data;
      if (dcs.length) datacenter = dcs[0];
    } catch {
      // Keep the default: the page itself will say what it can't read.
    }
  }
  route();
}

start();
