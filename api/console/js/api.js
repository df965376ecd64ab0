// The API client: the key in X-API-Key, JSON in and out, errors as ApiError carrying the
// status and the API's `detail`. The key lives in this module's memory only, never in
// sessionStorage or localStorage: a script injected into the page (or an extension) cannot
// read it back from storage, and it is gone when the tab is closed or reloaded.

let key = null;

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
    this.detail = detail;
  }
}

export function getKey() {
  return key;
}

export function setKey(secret) {
  key = secret || null;
}

/** FastAPI's detail: a string, or a list of validation errors each with loc and msg. */
function readDetail(body, fallback) {
  const detail = body && body.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((e) => {
      const where = Array.isArray(e.loc) ? e.loc.filter((p) => p !== 'body').join('.') : '';
      return where ? `${where}: ${e.msg}` : e.msg;
    }).join('; ');
  }
  return fallback;
}

/** GET (or `method`) /api/v1`path` with `query` (empty values left out) and a JSON `body`. */
export async function api(path, { method = 'GET', query, body, key = getKey() } = {}) {
  const url = new URL(`/api/v1${path}`, window.location.origin);
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') url.searchParams.set(name, value);
  }
  const headers = { Accept: 'application/json' };
  if (key) headers['X-API-Key'] = key;
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  let response;
  try {
    response = await fetch(url, {
      method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: 'no-store',
    });
  } catch (err) {
    throw new ApiError(0, err.message || String(err));
  }
  if (response.status === 204) return null;
  let data = null;
  const text = await response.text();
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    throw new ApiError(response.status, readDetail(data, response.statusText || text.slice(0, 200)));
  }
  return data;
}

/** Business time: the demo's clock runs faster than the wall clock, so ask the server. */
export async function businessNow() {
  const page = await api('/tickets', { query: { state: 'all', limit: 1 } });
  return new Date(page.now);
}
