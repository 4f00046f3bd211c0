"""Rate limits (Flask-Limiter, counters in Redis so they hold across gunicorn workers).

Per user (the token's subject), per IP for callers without a valid token. Money-moving endpoints
and wallet connection get stricter limits. When the limiter's Redis is unreachable the limiter
fails open for reads, but money-moving endpoints fail *closed* with 503 `rate_limiter_unavailable`:
no one can move money without being counted.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Flask, current_app, request
from flask_limiter import Limiter

from app.api.auth import decode_token
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


class RateLimiterUnavailableError(ServiceUnavailableError):
    code = "rate_limiter_unavailable"
    title = "Rate limiting is unavailable; money-moving requests are refused until it is back"


def caller_key() -> str:
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("bearer "):
        config = current_app.extensions["wallet"].config
        try:
            user_id, _ = decode_token(
                config.jwt_secret, header[7:].strip(), config.jwt_leeway_seconds
            )
            return f"user:{user_id}"
        except AuthenticationError:
            pass
    return f"ip:{request.remote_addr}"


def install(app: Flask, config: Config) -> Limiter:
    limiter = Limiter(
        key_func=caller_key,
        app=app,
        storage_uri=config.ratelimit_storage_url or config.redis_url,
        storage_options={"socket_timeout": 1, "socket_connect_timeout": 1},
        default_limits=[config.rate_limit_default],
        headers_enabled=True,
        swallow_errors=True,
        key_prefix="ratelimit",
    )

    def fail_closed(view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                healthy = limiter.storage.check()
            except Exception:  # noqa: BLE001 - any storage failure counts as unavailable
                healthy = False
            if not healthy:
                raise RateLimiterUnavailableError()
            return view(*args, **kwargs)

        return wrapper

    views: dict[str, Any] = app.view_functions
    for endpoint in MONEY:
        views[endpoint] = limiter.limit(lambda: config.rate_limit_money)(
            fail_closed(views[endpoint])
        )
    for endpoint in WALLET_AUTH:
        views[endpoint] = limiter.limit(lambda: config.rate_limit_wallet_auth)(views[endpoint])
    for endpoint in EXEMPT:
        if endpoint in app.view_functions:
            limiter.exempt(app.view_functions[endpoint])
    return limiter
