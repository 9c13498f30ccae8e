// The HTTP API as the views use it: the token from local storage (as Consul's UI keeps it,
// under "consul:token"), errors with their status, and live reads through blocking queries.

const TOKEN_KEY = 'consul:token';

// The UI's own root, from where this module was served: <base>assets/<version>/api.js.
export const base = new URL('../../', import.meta.url).pathname;

export function savedToken() {
  try {
    return JSON.parse(localStorage.getItem(TOKEN_KEY) || 'null');
  } catch {
    return null;
  }
}

export function saveToken(token) {
  if (token) localStorage.setItem(TOKEN_KEY, JSON.stringify(token));
  else localStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(status, text, index) {
    super(text || `HTTP ${status}`);
    this.status = status;
    this.index = index;
  }
}

function headers(extra) {
  const out = { ...extra };
  const token = savedToken();
  if (token && token.SecretID) out['X-Consul-Token'] = token.SecretID;
  return out;
}

// One request; JSON answers are parsed. Rejects with ApiError on a non-2xx status.
export async function request(method, path, { body, signal, headers: extra, secret } = {}) {
  const init = { method, signal, headers: headers(extra) };
  if (secret !== undefined) init.headers['X-Consul-Token'] = secret;
  if (body !== undefined) init.body = typeof body === 'string' ? body : JSON.stringify(body);
  const resp = await fetch(path, init);
  const text = await resp.text();
  const index = Number(resp.headers.get('X-Consul-Index') || 0);
  if (!resp.ok) throw new ApiError(resp.status, text.trim(), index);
  const type = resp.headers.get('Content-Type') || '';
  const data = type.includes('json') && text ? JSON.parse(text) : text;
  return { data, index, resp };
}

export const get = (path, opts) => request('GET', path, opts);

// Calls onData with each new result of `path`, waiting for changes with `?index=` (no
// polling): each answer's X-Consul-Index is the next request's index. Stops when `signal`
// aborts. A 404 is an empty result for reads that answer so when there is nothing (KV
// listings) and `missing` is given. Any other error goes to onError; the read is retried after
// a pause unless it was a client error (400-499), which retrying won't fix.
export async function watch(path, signal, onData, onError, { missing } = {}) {
  let index = 0;
  while (!signal.aborted) {
    const sep = path.includes('?') ? '&' : '?';
    const url = index ? `${path}${sep}index=${index}&wait=5m` : path;
    let got;
    try {
      got = await get(url, { signal });
    } catch (err) {
      if (signal.aborted) return;
      if (err instanceof ApiError && err.status === 404 && missing !== undefined) {
        got = { data: missing, index: err.index };
      } else {
        onError(err);
        if (err instanceof ApiError && err.status >= 400 && err.status < 500) return;
        await new Promise((resolve) => setTimeout(resolve, 2000));
        continue;
      }
    }
    if (signal.aborted) return;
    if (!index || got.index !== index) onData(got.data, got);
    // An index that went backwards (a restore) starts over, as Consul's clients do.
    index = got.index < index ? 0 : got.index;
  }
}

export function encodePath(path) {
  return path.split('/').map(encodeURIComponent).join('/');
}
