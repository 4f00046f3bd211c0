"""Wiring: the one place that builds the engine, session factory and Redis client."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from app.config import Config
from app.db import Database
from app.queue import TaskQueue


@dataclass
class Wiring:
    config: Config
    db: Database
    redis: redis.Redis
    queue: TaskQueue


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
    )
