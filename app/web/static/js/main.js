// The wallet page's behaviour: send, deposit, withdraw, live updates, notifications, settings.
import { api, ApiError, newKey, setText, showProblem } from './api.js';
import { follow, refresh, setUpLoadMore, statusText, upsertRow, watching } from './history.js';
import { setUpConnection, signWithConnected } from './connect.js';

const root = document.getElementById('wallet');

async function refreshBalance() {
  const overview = await api('GET', '/api/wallet');
  const { balance, available_balance: available } = overview.wallet;
  setText('balance', available);
  const reserved = (Number(balance) - Number(available)).toFixed(6);
  document.getElementById('reserved').hidden = reserved === '0.000000';
  setText('reserved-amount', reserved);
}

// A transfer or withdrawal at or above the step-up amount waits for the connected wallet's
// signature of its confirmation message (the server answers `confirmation`).
async function confirmIfAsked(result, statusId) {
  if (!result.confirmation) return result;
  setText(statusId, 'Confirm it in your wallet: this amount needs your signature.');
  const signature = await signWithConnected(root.dataset.address, result.confirmation.message);
  return api('POST', `/api/wallet/transactions/${result.transaction_id}/confirm`, { signature });
}

// One Idempotency-Key per submission: kept while the same values are retried after a network
// failure, replaced once the server has answered.
function submission(form) {
  let pending = null;
  return (values) => {
    const fingerprint = JSON.stringify(values);
    if (!pending || pending.fingerprint !== fingerprint) pending = { fingerprint, key: newKey() };
    return { key: pending.key, answered: () => { pending = null; } };
  };
}

function setUpSend() {
  const form = document.getElementById('send');
  const button = document.getElementById('send-button');
  const keyFor = submission(form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const data = new FormData(form);
    const values = { recipient_id: data.get('recipient_id').trim(), amount: data.get('amount').trim() };
    if (data.get('note')) values.note = data.get('note');
    const { key, answered } = keyFor(values);
    button.disabled = true;
    setText('send-status', 'Sending…');
    showProblem('send', null, 'send-status', ['recipient_id', 'amount', 'note']);
    setText('send-status', 'Sending…');
    try {
      const accepted = await api('POST', '/api/wallet/transfer', values, { 'Idempotency-Key': key });
      answered();
      form.reset();
      const result = await confirmIfAsked(accepted, 'send-status');
      const item = { id: result.transaction_id, type: 'transfer', amount: `-${values.amount}`,
        status: result.status, note: values.note, created_at: new Date().toISOString(),
        failure_reason: result.failure_reason, counterparty: values.recipient_id };
      upsertRow(item);
      setText('send-status', `Transfer ${statusText(item).toLowerCase()}.`);
      refreshBalance();
      follow(result.transaction_id, (final) => {
        setText('send-status', `Transfer ${statusText(final).toLowerCase()}.`);
        refreshBalance();
      });
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) answered();
      showProblem('send', error, 'send-status', ['recipient_id', 'amount', 'note']);
    } finally {
      button.disabled = false;
    }
  });
}

function setUpDeposit() {
  const form = document.getElementById('deposit');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const amount = new FormData(form).get('amount').trim();
    const button = form.querySelector('button');
    button.disabled = true;
    showProblem('deposit', null, 'deposit-status', ['amount']);
    try {
      const request = await api('POST', '/api/wallet/deposits', { amount });
      document.getElementById('deposit-qr').src = `/wallet/qr.svg?data=${encodeURIComponent(request.payment_url)}`;
      setText('deposit-url', request.payment_url);
      document.getElementById('deposit-request').hidden = false;
      setText('deposit-status', 'Pending: waiting for the payment.');
      upsertRow({ id: request.transaction_id, type: 'deposit', amount: request.amount,
        status: 'pending', created_at: new Date().toISOString(), counterparty: 'chain' });
      follow(request.transaction_id, (final) => {
        setText('deposit-status', `Deposit ${statusText(final).toLowerCase()}.`);
        if (final.status === 'completed') document.getElementById('deposit-request').hidden = true;
        refreshBalance();
      });
    } catch (error) {
      showProblem('deposit', error, 'deposit-status', ['amount']);
    } finally {
      button.disabled = false;
    }
  });
  document.getElementById('copy-deposit').addEventListener('click', () =>
    navigator.clipboard?.writeText(document.getElementById('deposit-url').textContent));
}

function setUpWithdraw() {
  const form = document.getElementById('withdraw');
  const confirm = document.getElementById('withdraw-confirm');
  const keyFor = submission(form);
  let amount = null;
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    amount = new FormData(form).get('amount').trim();
    const address = root.dataset.address;
    if (!address) {
      setText('withdraw-status', 'Connect a wallet first: withdrawals go to the connected address.');
      return;
    }
    setText('withdraw-summary', `Withdraw ${amount} to ${address}?`);
    confirm.hidden = false;
    document.getElementById('withdraw-yes').focus();
  });
  document.getElementById('withdraw-no').addEventListener('click', () => { confirm.hidden = true; });
  document.getElementById('withdraw-yes').addEventListener('click', async (event) => {
    const button = event.currentTarget;
    const { key, answered } = keyFor({ amount });
    button.disabled = true;
    showProblem('withdraw', null, 'withdraw-status', ['amount']);
    try {
      const accepted = await api('POST', '/api/wallet/withdrawals', { amount }, { 'Idempotency-Key': key });
      answered();
      confirm.hidden = true;
      form.reset();
      const result = await confirmIfAsked(accepted, 'withdraw-status');
      upsertRow({ id: result.transaction_id, type: 'withdrawal', amount: `-${amount}`,
        status: result.status, created_at: new Date().toISOString(), counterparty: 'chain' });
      setText('withdraw-status', 'Withdrawal pending.');
      refreshBalance();
      follow(result.transaction_id, (final) => {
        setText('withdraw-status', `Withdrawal ${statusText(final).toLowerCase()}.`);
        refreshBalance();
      });
    } catch (error) {
      if (error instanceof ApiError && error.status < 500) answered();
      showProblem('withdraw', error, 'withdraw-status', ['amount']);
    } finally {
      button.disabled = false;
    }
  });
}

// Notifications: the list, the unread count, and the live stream that also moves balances.
const list = document.getElementById('notification-list');

function describe(note) {
  const amount = note.amount ? ` ${note.amount}` : '';
  return `${note.kind.replaceAll('_', ' ')}${amount}`;
}

function renderNotification(note, { prepend = false } = {}) {
  if (list.querySelector(`li[data-id="${note.id}"]`)) return;
  const item = document.createElement('li');
  item.dataset.id = note.id;
  item.className = note.read ? '' : 'unread';
  const text = document.createElement('span');
  text.textContent = `${describe(note)} · ${new Date(note.created_at).toISOString().slice(0, 16).replace('T', ' ')} `;
  item.append(text);
  if (!note.read) {
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'small secondary';
    button.textContent = 'Mark read';
    button.setAttribute('aria-label', `Mark read: ${describe(note)}`);
    button.addEventListener('click', async () => {
      await api('POST', `/api/notifications/${note.id}/read`);
      item.className = '';
      button.remove();
      updateUnread();
    });
    item.append(button);
  }
  if (prepend) list.prepend(item); else list.append(item);
  document.getElementById('no-notifications').hidden = true;
}

function updateUnread() {
  setText('unread-count', String(list.querySelectorAll('li.unread').length));
}

async function loadNotifications() {
  // The button works at once: the stream may show a notification before this list arrives.
  document.getElementById('read-all').addEventListener('click', async () => {
    await api('POST', '/api/notifications/read-all');
    for (const item of list.querySelectorAll('li.unread')) {
      item.className = '';
      item.querySelector('button')?.remove();
    }
    updateUnread();
  });
  const page = await api('GET', '/api/notifications?limit=20');
  for (const note of page.items) renderNotification(note);
  updateUnread();
}

function listen() {
  const stream = new EventSource('/api/notifications/stream');
  stream.addEventListener('notification', (event) => {
    const note = JSON.parse(event.data);
    renderNotification(note, { prepend: true });
    updateUnread();
    refreshBalance();
    if (note.transaction_id) refresh(note.transaction_id);
    for (const id of watching()) refresh(id);
  });
}

function setUpSettings() {
  const form = document.getElementById('settings');
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const value = new FormData(form).get('low_balance_threshold').trim();
    showProblem('threshold', null, 'settings-status', ['low_balance_threshold']);
    try {
      const saved = await api('PUT', '/api/wallet/settings', { low_balance_threshold: value || null });
      setText('settings-status', `Saved: alert below ${saved.effective_low_balance_threshold}.`);
    } catch (error) {
      if (error instanceof ApiError && error.problem.errors?.low_balance_threshold) {
        setText('threshold-error', [].concat(error.problem.errors.low_balance_threshold).join(' '));
        setText('settings-status', 'Please correct the field above.');
      } else {
        showProblem('threshold', error, 'settings-status', []);
      }
    }
  });
}

function setUpSignOut() {
  document.getElementById('signout').addEventListener('submit', async (event) => {
    event.preventDefault();
    await api('DELETE', '/api/session');
    window.location.assign('/wallet');
  });
}

setUpSend();
setUpDeposit();
setUpWithdraw();
setUpLoadMore();
setUpSettings();
setUpSignOut();
setUpConnection(root, refreshBalance);
loadNotifications();
listen();
