"""Wiring: the one place that builds the engine, session factory and Redis client."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from app.config import Config
from app.db import Database


@dataclass
class Wiring:
    config: Config
    db: Database
    redis: redis.Redis


def bootstrap(config: Config) -> Wiring:
    """Build the adapters. Creating them opens no connection; the first use does."""
    return Wiring(
        config=config,
        db=Database(config.database_url, pool_size=config.database_pool_size),
        redis=redis.Redis.from_url(
            config.redis_url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30
        ),
    )
