"""Rate limits: fixed windows counted in Redis, so they hold across gunicorn workers.

Per user (the token's subject), per IP for callers without a valid token, per endpoint. Money-moving
endpoints and wallet connection get stricter limits. When the limiter's Redis is unreachable reads
fail open, but money-moving endpoints fail *closed* with 503 `rate_limiter_unavailable`: no one can
move money without being counted.

The `limits` library parses the limits, names the windows and owns the Redis storage; one hook
before each request counts it with one script call (INCRBY, EXPIRE on the first hit, and the
window's TTL for the X-RateLimit-* and Retry-After headers): one Redis round trip per request,
on a held connection (`app.hot_redis`). This replaced Flask-Limiter, which did the same count
through two limit evaluations and about a hundred context-proxy lookups per request: a fifth of
the CPU of accepting a transfer.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import cast

import redis
from flask import Flask, Response, g, request
from limits import RateLimitItem, parse
from limits.storage import RedisStorage

from app.api.auth import bearer_identity
from app.config import Config
from app.domain.errors import AuthenticationError, RateLimitedError, ServiceUnavailableError
from app.hot_redis import HotRedis

log = logging.getLogger(__name__)

MONEY = frozenset(
    {
        "wallet.transfer",
        "chain.create_withdrawal",
        "chain.create_deposit",
        "internal.charge",
        "internal.reward",
        "internal.refund",
        "internal.place_hold",
        "internal.capture_hold",
        "internal.void_hold",
        "wallet.confirm_transaction",
    }
)
WALLET_AUTH = frozenset({"connections.challenge", "connections.connect"})
EXEMPT = frozenset(
    {
        "health.healthz",
        "health.readyz",
        "health.prometheus_metrics",
        "notifications.stream",
        "api-docs.openapi_json",
        "api-docs.openapi_swagger_ui",
        "static",
        "pages.static",
    }
)
KEY_PREFIX = "ratelimit"
# WSGI environ key: the request was already counted (hits, seconds until the window resets) by
# the express lane (app/api/express.py) before it handed the request over. Only the server sets
# environ keys without an HTTP_ prefix, so a client cannot send one.
COUNTED = "wallet.rate_limit_counted"

# `limits`' incr_expire.lua, answering the window's TTL beside the count.
_INCR_EXPIRE_TTL = b"""
local amount = tonumber(ARGV[2])
local current = redis.call("incrby", KEYS[1], amount)
if tonumber(current) == amount then
    redis.call("expire", KEYS[1], ARGV[1])
end
return {current, redis.call("ttl", KEYS[1])}
"""


class RateLimiterUnavailableError(ServiceUnavailableError):
    code = "rate_limiter_unavailable"
    title = "Rate limiting is unavailable; money-moving requests are refused until it is back"


class WindowRedisStorage(RedisStorage):
    """`limits`' Redis storage with a counting call that also answers the window's TTL. Its
    scheme is its own, so the library's registry keeps `redis://` for the library's storage."""

    STORAGE_SCHEME = ["wallet+redis"]

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.hot = HotRedis(cast(redis.Redis, self.get_connection()))

    def count(self, key: str, expiry: int) -> tuple[int, int]:
        """Count one hit in the window `key`: (hits so far, seconds until the window resets)."""
        hits, ttl = self.hot.eval_script(_INCR_EXPIRE_TTL, [self.prefixed_key(key)], [expiry, 1])
        return int(hits), max(int(ttl), 0)


@dataclass(frozen=True)
class Window:
    limit: int
    remaining: int
    resets_at: float

    @classmethod
    def of(cls, item: RateLimitItem, hits: int, ttl: int) -> Window:
        return cls(item.amount, max(item.amount - hits, 0), time.time() + ttl)

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.resets_at)),
        }


def caller_key() -> str:
    try:
        user_id, _ = bearer_identity()
        return f"user:{user_id}"
    except AuthenticationError:
        return f"ip:{request.remote_addr}"


class RateLimits:
    def __init__(self, config: Config) -> None:
        self.storage = WindowRedisStorage(
            config.ratelimit_storage_url or config.redis_url,
            socket_timeout=1,
            socket_connect_timeout=1,
        )
        self.default = parse(config.rate_limit_default)
        self.by_endpoint: dict[str, RateLimitItem] = {
            **dict.fromkeys(MONEY, parse(config.rate_limit_money)),
            **dict.fromkeys(WALLET_AUTH, parse(config.rate_limit_wallet_auth)),
        }
        self.auth_failures = parse(config.rate_limit_auth_failures)

    def check(self) -> None:
        """Before a request: count it in its window; refuse it (429) beyond the limit, or (503) a
        money-moving request that could not be counted."""
        endpoint = request.endpoint or "unmatched"
        if endpoint in EXEMPT:
            return
        item = self.item_for(endpoint)
        try:
            hits, ttl = request.environ.pop(COUNTED, None) or self.count(endpoint, caller_key())
        except redis.RedisError as error:
            if endpoint in MONEY:
                raise RateLimiterUnavailableError() from error
            log.warning("rate limiter unavailable, %s not counted: %s", endpoint, error)
            return
        g.rate_limit_window = Window.of(item, hits, ttl)
        if hits > item.amount:
            raise RateLimitedError(f"Rate limit exceeded: {item}")

    def item_for(self, endpoint: str) -> RateLimitItem:
        return self.by_endpoint.get(endpoint, self.default)

    def count(self, endpoint: str, caller: str) -> tuple[int, int]:
        """Count one request of `caller` (`user:<id>` or `ip:<address>`) to `endpoint`: (hits so
        far in its window, seconds until the window resets)."""
        item = self.item_for(endpoint)
        return self.storage.count(item.key_for(KEY_PREFIX, caller, endpoint), item.get_expiry())

    def count_auth_failure(self) -> tuple[int, Window] | None:
        """Count a failed authentication against the client's IP, on every route (the exempt
        stream included): (failures in this window, the window), or None when the counter is
        unreachable."""
        item = self.auth_failures
        key = item.key_for(KEY_PREFIX, f"ip:{request.remote_addr}", "auth-failures")
        try:
            hits, ttl = self.storage.count(key, item.get_expiry())
        except redis.RedisError as error:
            log.warning("rate limiter unavailable, failed authentication not counted: %s", error)
            return None
        return hits, Window.of(item, hits, ttl)

    @staticmethod
    def add_headers(response: Response) -> Response:
        window: Window | None = g.get("rate_limit_window")
        if window is not None:
            response.headers.update(window.headers())
            if response.status_code == 429:
                response.headers["Retry-After"] = str(max(int(window.resets_at - time.time()), 1))
        return response


def install(app: Flask, config: Config) -> RateLimits:
    limits = RateLimits(config)
    app.before_request(limits.check)
    app.after_request(limits.add_headers)
    return limits
