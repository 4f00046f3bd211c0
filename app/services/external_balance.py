"""The on-chain token balance of a wallet's connected address, cached briefly in Redis. When the
RPC (or Redis) is down the wallet still answers, with the balance marked unavailable."""

from __future__ import annotations

import logging
from decimal import Decimal

import redis

from app.bootstrap import Wiring
from app.chain.rpc import ChainError

log = logging.getLogger(__name__)


def lookup(wiring: Wiring, address: str) -> tuple[Decimal | None, bool]:
    """(balance, available). A connected address without a token account holds 0."""
    key = f"external-balance:{wiring.config.token_mint}:{address}"
    try:
        cached = wiring.redis.get(key)
    except redis.RedisError:
        cached = None
    if cached is not None:
        return Decimal(cached.decode() if isinstance(cached, bytes) else cached), True
    try:
        balance = wiring.chain_quick.token_balance(address, wiring.config.token_mint)
    except (ChainError, ValueError) as exc:
        log.info("external balance of %s unavailable: %s", address, exc)
        return None, False
    value = balance if balance is not None else Decimal(0)
    try:
        wiring.redis.set(key, str(value), ex=wiring.config.external_balance_cache_seconds)
    except redis.RedisError:
        pass
    return value, True
