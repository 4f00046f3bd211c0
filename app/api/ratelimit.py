"""Rate limits (Flask-Limiter, counters in Redis so they hold across gunicorn workers).

Per user (the token's subject), per IP for callers without a valid token. Money-moving endpoints
and wallet connection get stricter limits. When the limiter's Redis is unreachable the limiter
fails open for reads, but money-moving endpoints fail *closed* with 503 `rate_limiter_unavailable`:
no one can move money without being counted.

One Redis round trip per request. Flask-Limiter's fixed window counts with one script call
(INCRBY, EXPIRE on the first hit), but its strategy's `hit` answers only yes or no, so the
X-RateLimit-* and Retry-After headers would read the window again (GET and TTL: two more round
trips), and checking that a money request was counted used to be a PING. `WindowRedisStorage`
(a `limits` storage registered under its own scheme, the library's extension point) makes the
counting script also return the window's TTL and keeps both for the rest of the request, so the
headers are answered from the hit itself; a money request goes on only if its hit succeeded.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any

from flask import Flask, g, has_app_context, request
from flask_limiter import Limiter
from limits.storage import RedisStorage

from app.api.auth import bearer_identity
from app.config import Config
from app.domain.errors import AuthenticationError, ServiceUnavailableError

MONEY = (
    "wallet.transfer",
    "chain.create_withdrawal",
    "chain.create_deposit",
    "internal.charge",
    "internal.reward",
    "internal.refund",
)
WALLET_AUTH = ("connections.challenge", "connections.connect")
EXEMPT = (
    "health.healthz",
    "health.readyz",
    "health.prometheus_metrics",
    "notifications.stream",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "static",
)
SCHEME_PREFIX = "wallet+"

# The library's incr_expire.lua, answering the window's TTL beside the count.
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
    """`limits`' Redis storage whose counting call also returns the window's expiry, remembered
    for the current request: `get` and `get_expiry` of a key counted in this request (what the
    fixed-window strategy's window stats read for the headers) cost no round trip."""

    STORAGE_SCHEME = [SCHEME_PREFIX + scheme for scheme in ("redis", "rediss", "unix")]

    def __init__(self, uri: str, **options: Any) -> None:
        super().__init__(uri.removeprefix(SCHEME_PREFIX), **options)

    def initialize_storage(self, uri: str) -> None:
        super().initialize_storage(uri)
        self.lua_incr_expire_ttl = self.get_connection().register_script(_INCR_EXPIRE_TTL)

    def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        prefixed = self.prefixed_key(key)
        count, ttl = self.lua_incr_expire_ttl([prefixed], [expiry, amount])
        if has_app_context():
            g.setdefault("rate_limit_windows", {})[prefixed] = (
                int(count),
                max(int(ttl), 0) + time.time(),
            )
        return int(count)

    def _counted(self, key: str) -> tuple[int, float] | None:
        if not has_app_context():
            return None
        windows: dict[str, tuple[int, float]] = g.get("rate_limit_windows", {})
        return windows.get(self.prefixed_key(key))

    def get(self, key: str) -> int:
        counted = self._counted(key)
        return counted[0] if counted else super().get(key)

    def get_expiry(self, key: str) -> float:
        counted = self._counted(key)
        return counted[1] if counted else super().get_expiry(key)


def counted() -> bool:
    """Whether this request has been counted by the limiter (its hit reached Redis)."""
    return bool(g.get("rate_limit_windows"))


def caller_key() -> str:
    try:
        user_id, _ = bearer_identity()
        return f"user:{user_id}"
    except AuthenticationError:
        return f"ip:{request.remote_addr}"


def fail_closed(view: Callable[..., Any]) -> Callable[..., Any]:
    """Refuse (503) a request the limiter could not count: its Redis is unreachable."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if not counted():
            raise RateLimiterUnavailableError()
        return view(*args, **kwargs)

    return wrapper


def install(app: Flask, config: Config) -> Limiter:
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=SCHEME_PREFIX + (config.ratelimit_storage_url or config.redis_url),
        storage_options={"socket_timeout": 1, "socket_connect_timeout": 1},
        strategy="fixed-window",
        default_limits=[config.rate_limit_default],
        headers_enabled=True,
        swallow_errors=True,
        key_prefix="ratelimit",
    )
    views: dict[str, Any] = app.view_functions
    for endpoint in MONEY:
        # The limit's check runs before `fail_closed` looks at its outcome.
        views[endpoint] = limiter.limit(lambda: config.rate_limit_money)(
            fail_closed(views[endpoint])
        )
    for endpoint in WALLET_AUTH:
        views[endpoint] = limiter.limit(lambda: config.rate_limit_wallet_auth)(views[endpoint])
    exempt = frozenset(EXEMPT)
    # Decided before Flask-Limiter resolves any limit (a tenth of a /healthz request otherwise).
    limiter.request_filter(lambda: request.endpoint in exempt)
    return limiter
