// Connect an external Solana wallet: Wallet Standard wallets (Phantom, Solflare, Backpack, …)
// and the legacy injected provider; challenge → signMessage → /connect.
import { getWallets } from '../vendor/wallet-standard-app-1.1.1/wallets.js';
import { api, ApiError, setText, shorten } from './api.js';

const SIGN = 'solana:signMessage';
const CONNECT = 'standard:connect';
const INSTALL = 'No Solana wallet found in this browser. Install one (for example Phantom, https://phantom.com) and reload.';

function toBase64(bytes) {
  return btoa(String.fromCharCode(...bytes));
}

// Every wallet that can connect and sign a message, by name; the legacy provider only when no
// standard wallet has its name (Phantom registers both ways).
function discover() {
  const found = getWallets().get()
    .filter((w) => w.features[CONNECT] && w.features[SIGN] && w.chains.some((c) => c.startsWith('solana:')))
    .map((wallet) => ({ name: wallet.name, connect: () => standardConnect(wallet) }));
  const legacy = window.phantom?.solana ?? window.solana;
  if (legacy && typeof legacy.signMessage === 'function') {
    const name = legacy.isPhantom ? 'Phantom' : 'Solana wallet';
    if (!found.some((w) => w.name === name)) found.push({ name, connect: () => legacyConnect(legacy) });
  }
  return found;
}

async function standardConnect(wallet) {
  const { accounts } = await wallet.features[CONNECT].connect();
  const account = accounts[0];
  if (!account) throw new Error('The wallet shared no account.');
  return {
    address: account.address,
    sign: async (message) => {
      const [signed] = await wallet.features[SIGN].signMessage({ account, message });
      return { signature: signed.signature, signedMessage: signed.signedMessage };
    },
  };
}

async function legacyConnect(provider) {
  const { publicKey } = await provider.connect();
  return {
    address: publicKey.toString(),
    sign: async (message) => {
      const { signature } = await provider.signMessage(message, 'utf8');
      return { signature, signedMessage: message };
    },
  };
}

// Step-up: the connected wallet signs a high-value movement's confirmation message. The page
// may have been reloaded since connecting, so the wallet is found again by its address.
export async function signWithConnected(address, text) {
  for (const choice of discover()) {
    const account = await choice.connect();
    if (account.address === address) {
      const { signature } = await account.sign(new TextEncoder().encode(text));
      return toBase64(signature);
    }
  }
  throw new Error('Open the wallet connected to this account to confirm.');
}

function rejected(error) {
  return error?.code === 4001 || /reject|denied|cancel/i.test(`${error?.name} ${error?.message}`);
}

export function setUpConnection(root, refreshBalance) {
  const connected = document.getElementById('connected');
  const disconnected = document.getElementById('disconnected');
  const chooser = document.getElementById('chooser');
  const choices = document.getElementById('chooser-buttons');
  const button = document.getElementById('connect');

  function show(address) {
    root.dataset.address = address || '';
    connected.hidden = !address;
    disconnected.hidden = Boolean(address);
    const shown = document.getElementById('connected-address');
    shown.textContent = shorten(address);
    shown.title = address || '';
  }

  async function run(choice) {
    chooser.hidden = true;
    button.disabled = true;
    setText('connect-status', `Waiting for ${choice.name}…`);
    try {
      const account = await choice.connect();
      const challenge = await api('POST', '/api/wallet/challenge', { wallet_address: account.address });
      const message = new TextEncoder().encode(challenge.message);
      setText('connect-status', `Approve the sign-in request in ${choice.name}.`);
      const { signature, signedMessage } = await account.sign(message);
      const result = await api('POST', '/api/wallet/connect', {
        wallet_address: account.address,
        signature: toBase64(signature),
        signed_message: toBase64(signedMessage),
      });
      show(result.address);
      setText('connect-status', '');
      document.getElementById('disconnect').focus();
      refreshBalance();
    } catch (error) {
      if (error instanceof ApiError && error.problem.code === 'challenge_expired') {
        setText('connect-status', 'The sign-in request expired. Press Connect wallet to try again.');
      } else if (error instanceof ApiError) {
        setText('connect-status', `Not connected: ${error.message}`);
      } else if (rejected(error)) {
        setText('connect-status', 'Request rejected in the wallet. Nothing was connected.');
      } else {
        setText('connect-status', `Not connected: ${error?.message || error}`);
      }
    } finally {
      button.disabled = false;
    }
  }

  button.addEventListener('click', () => {
    const wallets = discover();
    if (wallets.length === 0) {
      setText('connect-status', INSTALL);
      return;
    }
    if (wallets.length === 1) {
      run(wallets[0]);
      return;
    }
    choices.replaceChildren(...wallets.map((choice) => {
      const option = document.createElement('button');
      option.type = 'button';
      option.textContent = choice.name;
      option.addEventListener('click', () => run(choice));
      return option;
    }));
    chooser.hidden = false;
    setText('connect-status', 'Several wallets found: choose one.');
    choices.querySelector('button').focus();
  });

  document.getElementById('disconnect').addEventListener('click', async () => {
    try {
      await api('POST', '/api/wallet/disconnect', { wallet_id: root.dataset.walletId });
      show('');
      setText('connect-status', 'Disconnected.');
    } catch (error) {
      setText('connect-status', `Could not disconnect: ${error.message}`);
    }
  });

  document.getElementById('copy-address').addEventListener('click', async () => {
    await navigator.clipboard?.writeText(root.dataset.address);
    setText('connect-status', 'Address copied.');
  });
}
