"""What the chain services share: the treasury key, the mint, amount units."""

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


def treasury(config: Config) -> Keypair:
    """The treasury key: a keypair file/JSON, or `sealed:<json>` (made by `flask keys seal`),
    opened with WALLET_DATA_KEY so the key never rests in plaintext."""
    source = config.treasury_keypair
    if not source:
        raise RuntimeError("TREASURY_KEYPAIR is not configured")
    if source.startswith("sealed:"):
        source = Keyring(config.wallet_data_key).unseal(json.loads(source[7:]))["content"]
    return _keypair(source)


def mint(config: Config) -> Pubkey:
    if not config.token_mint:
        raise RuntimeError("TOKEN_MINT is not configured")
    return Pubkey.from_string(config.token_mint)


def to_units(amount: Decimal, decimals: int) -> int:
    return int(amount.scaleb(decimals))
