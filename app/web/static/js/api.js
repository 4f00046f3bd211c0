// Calls to this origin's API with the session cookie and the page's CSRF token.
const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? '';

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem?.detail || problem?.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem ?? {};
  }
}

// JSON body of the answer; throws ApiError for a problem (4xx/5xx), TypeError when offline.
export async function api(method, path, body, headers = {}) {
  const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json', ...headers } };
  if (method !== 'GET' && method !== 'HEAD') init.headers['X-CSRF-Token'] = csrf;
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const text = await response.text();
  const parsed = text ? JSON.parse(text) : null;
  if (!response.ok) throw new ApiError(response.status, parsed);
  return parsed;
}

// A fresh Idempotency-Key (randomUUID needs a secure context: https, localhost or 127.0.0.1).
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

// Show a problem's per-field messages next to the fields of `form` (ids `<prefix>-<field>-error`).
export function showProblem(prefix, error, status, fieldNames) {
  for (const name of fieldNames) setText(`${prefix}-${name}-error`, '');
  const fields = error instanceof ApiError ? error.problem.errors : null;
  let shown = false;
  if (fields && typeof fields === 'object') {
    for (const [name, messages] of Object.entries(fields)) {
      const target = document.getElementById(`${prefix}-${name}-error`);
      if (target) {
        target.textContent = [].concat(messages).join(' ');
        shown = true;
      }
    }
  }
  const words = error instanceof ApiError ? error.message : 'The server could not be reached. Try again.';
  setText(status, shown ? 'Please correct the fields above.' : words);
}

export function setText(id, text) {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
}

export function shorten(address) {
  return address && address.length > 12 ? `${address.slice(0, 4)}…${address.slice(-4)}` : address || '';
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
