"""What the chain services share: the treasury address and key, the mint, amount units.

The treasury's address (TREASURY_ADDRESS) is public and is all the API needs; its private key
(TREASURY_KEYPAIR) is opened only where withdrawals are signed, in the chain worker. The public
API process is started without it (wsgi.py, Procfile, docker-compose)."""

from __future__ import annotations

import functools
import json
from decimal import Decimal

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from app.chain.solana import load_keypair
from app.config import Config
from app.sealing import Keyring


@functools.lru_cache(maxsize=4)
def _keypair(source: str) -> Keypair:
    return load_keypair(source)


def treasury_address(config: Config) -> str:
    """The treasury's public address (deposits are paid to it); never opens the key."""
    if not config.treasury_address:
        raise RuntimeError("TREASURY_ADDRESS is not configured")
    return str(Pubkey.from_string(config.treasury_address))


def treasury(config: Config) -> Keypair:
    """The treasury key, for signing withdrawals (the chain worker only): a keypair file/JSON, or
    `sealed:<json>` (made by `flask keys seal`), opened with WALLET_DATA_KEY so the key never
    rests in plaintext. It must be TREASURY_ADDRESS's key: deposits are paid to that address."""
    source = config.treasury_keypair
    if not source:
        raise RuntimeError("TREASURY_KEYPAIR is not configured")
    if source.startswith("sealed:"):
        source = Keyring(config.wallet_data_key).unseal(json.loads(source[7:]))["content"]
    keypair = _keypair(source)
    if str(keypair.pubkey()) != treasury_address(config):
        raise RuntimeError("TREASURY_KEYPAIR is not the key of TREASURY_ADDRESS")
    return keypair


def mint(config: Config) -> Pubkey:
    if not config.token_mint:
        raise RuntimeError("TOKEN_MINT is not configured")
    return Pubkey.from_string(config.token_mint)


def to_units(amount: Decimal, decimals: int) -> int:
    return int(amount.scaleb(decimals))
