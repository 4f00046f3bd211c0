"""Wiring: the one place that builds the engine, session factory and Redis client."""

from __future__ import annotations

from dataclasses import dataclass

import redis
from flask import current_app

from app.chain.solana import SolanaRpcClient
from app.config import Config
from app.db import Database
from app.queue import TaskQueue
from app.sealing import Keyring
from app.services.wallets import Provisioner, SystemWallets


@dataclass
class Wiring:
    config: Config
    db: Database
    redis: redis.Redis
    queue: TaskQueue
    chain: SolanaRpcClient
    chain_quick: SolanaRpcClient  # for request paths: one short try, no retries
    keyring: Keyring
    system: SystemWallets  # the platform, issuance and chain wallets (ids cached)
    provisioner: Provisioner  # users' wallets, get-or-create (known ones cached)


def bootstrap(config: Config) -> Wiring:
    """Build the adapters. Creating them opens no connection; the first use does."""
    client = redis.Redis.from_url(
        config.redis_url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
    )
    db = Database(config.database_url, pool_size=config.database_pool_size)
    return Wiring(
        config=config,
        db=db,
        redis=client,
        queue=TaskQueue(
            config.celery_broker_url,
            client,
            broker_is_redis_client=config.celery_broker_url == config.redis_url,
        ),
        chain=SolanaRpcClient(
            config.solana_rpc_url, timeout=config.rpc_timeout_seconds, retries=config.rpc_retries
        ),
        chain_quick=SolanaRpcClient(config.solana_rpc_url, timeout=1.0, retries=0),
        keyring=Keyring(config.wallet_data_key),
        system=SystemWallets(db),
        provisioner=Provisioner(db),
    )


def wiring() -> Wiring:
    """The adapters of the Flask app in context: the API's request or a worker's task (tasks
    run inside their app's context). The one accessor for both."""
    return current_app.extensions["wallet"]
