"""Real Chromium for the wallet page's tests: Debian's `chromium`, driven by Playwright.

Never `playwright install` (it downloads a browser from outside). When the Debian package is
missing it is installed with apt-get if this process is root (CI); otherwise the tests stop
with the one command to run: browser tests are never skipped silently.
"""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from nacl.signing import SigningKey
from solders.keypair import Keypair

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
INSTALL = "apt-get update && apt-get install -y --no-install-recommends chromium"
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "test" / "screenshots"
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 800}


def chromium_path() -> str:
    if Path(CHROMIUM).exists():
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        for command in (["apt-get", "update"], INSTALL.split(" && ")[1].split()):
            subprocess.run(command, check=True, env=env, stdout=subprocess.DEVNULL)
        if Path(CHROMIUM).exists():
            return CHROMIUM
    pytest.fail(
        f"Chromium is needed for the browser tests; install it with: sudo sh -c '{INSTALL}'"
    )


class FakeWallet:
    """A browser wallet for tests: its key is a PyNaCl SigningKey in this process; the page's
    wallet object asks it to sign through a function exposed to the browser context."""

    def __init__(self, name: str = "Test Wallet") -> None:
        self.keypair = Keypair()
        self.signing_key = SigningKey(self.keypair.secret())
        self.address = str(self.keypair.pubkey())
        self.name = name
        self.signed: list[bytes] = []
        self.before_signing: Callable[[], None] | None = None  # e.g. let the challenge expire

    def sign(self, message_b64: str) -> str:
        message = base64.b64decode(message_b64)
        self.signed.append(message)
        if self.before_signing is not None:
            self.before_signing()
        return base64.b64encode(self.signing_key.sign(message).signature).decode()

    def install(self, context: Any, *, legacy: bool = False) -> None:
        """Inject the wallet into every page of `context`: as a Wallet Standard wallet, or as
        the legacy `window.phantom.solana` provider."""
        context.expose_function("__fakeWalletSign", self.sign)
        script = LEGACY if legacy else STANDARD
        context.add_init_script(
            script.replace("__ADDRESS__", self.address)
            .replace("__PUBLIC_KEY__", base64.b64encode(bytes(self.keypair.pubkey())).decode())
            .replace("__NAME__", self.name)
        )


_COMMON = """
const fromB64 = (text) => Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
const toB64 = (bytes) => btoa(String.fromCharCode(...bytes));
const publicKey = fromB64('__PUBLIC_KEY__');
const address = '__ADDRESS__';
async function signBytes(message) { return fromB64(await window.__fakeWalletSign(toB64(message))); }
"""

STANDARD = (
    "(() => {"
    + _COMMON
    + """
const account = Object.freeze({ address, publicKey, chains: ['solana:localnet', 'solana:devnet'],
  features: ['solana:signMessage'] });
const listeners = {};
const wallet = {
  version: '1.0.0', name: '__NAME__',
  icon: 'data:image/svg+xml;base64,PHN2ZyB4bWxucz0iaHR0cDovL3d3dy53My5vcmcvMjAwMC9zdmciLz4=',
  chains: ['solana:localnet', 'solana:devnet', 'solana:mainnet'],
  accounts: [],
  features: {
    'standard:connect': { version: '1.0.0', connect: async () => { wallet.accounts = [account];
      (listeners.change || []).forEach((cb) => cb({ accounts: wallet.accounts }));
      return { accounts: wallet.accounts }; } },
    'standard:events': { version: '1.0.0', on: (event, cb) => {
      (listeners[event] ||= []).push(cb); return () => {}; } },
    'solana:signMessage': { version: '1.0.0', signMessage: async (...inputs) =>
      Promise.all(inputs.map(async ({ message }) => ({ signedMessage: message,
        signature: await signBytes(message), signatureType: 'ed25519' }))) },
  },
};
const callback = ({ register }) => register(wallet);
window.addEventListener('wallet-standard:app-ready', ({ detail }) => callback(detail));
window.dispatchEvent(
  new CustomEvent('wallet-standard:register-wallet', { detail: callback }));
})();"""
)

LEGACY = (
    "(() => {"
    + _COMMON
    + """
const key = { toString: () => address, toBytes: () => publicKey };
window.phantom = { solana: { isPhantom: true, publicKey: null,
  connect: async () => { window.phantom.solana.publicKey = key; return { publicKey: key }; },
  signMessage: async (message) => ({ signature: await signBytes(message), publicKey: key }) } };
})();"""
)
