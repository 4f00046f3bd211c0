"""Wiring: the one place that builds the engine, session factory and Redis client."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from app.chain.solana import SolanaRpcClient
from app.config import Config
from app.db import Database
from app.queue import TaskQueue
from app.sealing import Keyring


@dataclass
class Wiring:
    config: Config
    db: Database
    redis: redis.Redis
    queue: TaskQueue
    chain: SolanaRpcClient
    chain_quick: SolanaRpcClient  # for request paths: one short try, no retries
    keyring: Keyring


def bootstrap(config: Config) -> Wiring:
    """Build the adapters. Creating them opens no connection; the first use does."""
    client = redis.Redis.from_url(
        config.redis_url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )
    return Wiring(
        config=config,
        db=Database(config.database_url, pool_size=config.database_pool_size),
        redis=client,
        queue=TaskQueue(config.redis_url, client),
        chain=SolanaRpcClient(
            config.solana_rpc_url, timeout=config.rpc_timeout_seconds, retries=config.rpc_retries
        ),
        chain_quick=SolanaRpcClient(config.solana_rpc_url, timeout=1.0, retries=0),
        keyring=Keyring(config.wallet_data_key),
    )
