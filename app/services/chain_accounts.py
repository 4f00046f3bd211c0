"""What the chain services share: the treasury key, the mint, amount units."""

from __future__ import annotations

import functools
from decimal import Decimal

from solders.keypair import Keypair
from solders.pubkey import Pubkey

from app.chain.solana import load_keypair
from app.config import Config


@functools.lru_cache(maxsize=4)
def _keypair(source: str) -> Keypair:
    return load_keypair(source)


def treasury(config: Config) -> Keypair:
    if not config.treasury_keypair:
        raise RuntimeError("TREASURY_KEYPAIR is not configured")
    return _keypair(config.treasury_keypair)


def mint(config: Config) -> Pubkey:
    if not config.token_mint:
        raise RuntimeError("TOKEN_MINT is not configured")
    return Pubkey.from_string(config.token_mint)


def to_units(amount: Decimal, decimals: int) -> int:
    return int(amount.scaleb(decimals))
