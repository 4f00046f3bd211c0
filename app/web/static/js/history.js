// The Transactions table: rows as the server renders them, live status, Load more.
import { api, shorten, sleep } from './api.js';

const root = document.getElementById('wallet');
const rows = document.getElementById('transaction-rows');

const capital = (text) => text.charAt(0).toUpperCase() + text.slice(1);

export function statusText(item) {
  let words = capital(item.status);
  if (item.failure_reason) words += `: ${item.failure_reason.replaceAll('_', ' ')}`;
  if (item.status === 'failed' && item.type === 'withdrawal') words += ' (refunded to your balance)';
  return words;
}

function signed(amount) {
  return amount.startsWith('-') ? amount : `+${amount}`;
}

function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = text;
  if (className) td.className = className;
  return td;
}

export function renderRow(item) {
  const row = document.createElement('tr');
  row.dataset.id = item.id;
  row.dataset.status = item.status;
  cell(row, signed(item.amount), `amount ${item.amount.startsWith('-') ? 'debit' : 'credit'}`);
  cell(row, item.type);
  cell(row, statusText(item), 'status');
  const when = new Date(item.created_at || item.timestamp || Date.now());
  const time = document.createElement('time');
  time.dateTime = when.toISOString();
  time.textContent = when.toISOString().slice(0, 16).replace('T', ' ');
  row.insertCell().append(time);
  cell(row, item.note || '');
  cell(row, shorten(item.counterparty), 'party').title = item.counterparty || '';
  cell(row, item.balance_after ?? '', 'after');
  const chain = row.insertCell();
  if (item.tx_hash) {
    const link = document.createElement('a');
    link.href = root.dataset.explorer.replace('{signature}', item.tx_hash);
    link.rel = 'noopener noreferrer';
    link.target = '_blank';
    link.textContent = 'Explorer';
    chain.append(link);
  }
  return row;
}

export function upsertRow(item, { prepend = true } = {}) {
  const fresh = renderRow(item);
  const existing = rows.querySelector(`tr[data-id="${item.id}"]`);
  if (existing) existing.replaceWith(fresh);
  else if (prepend) rows.prepend(fresh);
  else rows.append(fresh);
  document.getElementById('empty-history').hidden = true;
  return fresh;
}

// Poll one transaction with backoff (1 s growing to 5 s) until it is final; `done()` (the stream
// saw it finish) ends it early. Resolves with the final view.
const watched = new Map();
export async function follow(id, onFinal) {
  watched.set(id, onFinal);
  let delay = 1000;
  while (watched.has(id)) {
    await sleep(delay);
    delay = Math.min(delay * 1.6, 5000);
    await refresh(id);
  }
}

export async function refresh(id) {
  let item;
  try {
    item = await api('GET', `/api/wallet/transactions/${id}`);
  } catch {
    return;
  }
  upsertRow(item);
  if (item.status === 'completed' || item.status === 'failed') {
    const onFinal = watched.get(id);
    watched.delete(id);
    if (onFinal) onFinal(item);
  }
}

export function watching() {
  return [...watched.keys()];
}

// Filters as the API wants them: the page's dates are whole UTC days, "To" included.
function query(form, cursor) {
  const params = new URLSearchParams();
  const data = new FormData(form);
  if (data.get('type')) params.set('type', data.get('type'));
  if (data.get('status')) params.set('status', data.get('status'));
  if (data.get('since')) params.set('since', `${data.get('since')}T00:00:00Z`);
  if (data.get('until')) {
    const next = new Date(`${data.get('until')}T00:00:00Z`);
    next.setUTCDate(next.getUTCDate() + 1);
    params.set('until', next.toISOString());
  }
  if (cursor) params.set('cursor', cursor);
  return params;
}

export function setUpLoadMore() {
  const more = document.getElementById('more');
  const filters = document.getElementById('filters');
  more.addEventListener('submit', async (event) => {
    event.preventDefault();
    const button = more.querySelector('button');
    button.disabled = true;
    try {
      const cursor = document.getElementById('more-cursor').value;
      const page = await api('GET', `/api/wallet/transactions?${query(filters, cursor)}`);
      for (const item of page.items) upsertRow(item, { prepend: false });
      document.getElementById('more-cursor').value = page.next_cursor || '';
      more.hidden = !page.next_cursor;
    } finally {
      button.disabled = false;
    }
  });
}
