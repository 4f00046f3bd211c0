"""Bearer JWT authentication (HS256, `JWT_SECRET`) and role checks.

A token must name this issuer and audience (`iss` = JWT_ISSUER, `aud` = JWT_AUDIENCE) and carry
`iat` and `exp` at most JWT_MAX_LIFETIME_SECONDS apart: a token minted for another service that
shares the secret, or one made to last for years, is refused (401 `unauthorized`)."""

from __future__ import annotations

import functools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar, cast

import jwt
from flask import current_app, g, request

from app.bootstrap import wiring
from app.config import DEFAULT_JWT_AUDIENCE, DEFAULT_JWT_ISSUER, Config
from app.db import Database
from app.domain.accounts import Role, is_reserved
from app.domain.errors import (
    AuthenticationError,
    PermissionDeniedError,
    RateLimitedError,
    ReservedSubjectError,
)
from app.services import audit, browser_sessions

TOKEN_ROLES = {Role.USER.value, Role.SERVICE.value, Role.ADMIN.value}
F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    role: str
    wallet_id: uuid.UUID


@dataclass(frozen=True)
class TokenRules:
    """Whose tokens are accepted, and for how long at most (from JWT_ISSUER, JWT_AUDIENCE,
    JWT_MAX_LIFETIME_SECONDS)."""

    issuer: str = DEFAULT_JWT_ISSUER
    audience: str = DEFAULT_JWT_AUDIENCE
    max_lifetime_seconds: int = Config.jwt_max_lifetime_seconds

    @classmethod
    def of(cls, config: Config) -> TokenRules:
        return cls(config.jwt_issuer, config.jwt_audience, config.jwt_max_lifetime_seconds)


def issue_token(
    secret: str,
    user_id: uuid.UUID,
    role: str = "user",
    ttl: timedelta = timedelta(hours=12),
    rules: TokenRules = TokenRules(),
) -> str:
    now = datetime.now(UTC)
    claims = {
        "sub": str(user_id),
        "role": role,
        "iss": rules.issuer,
        "aud": rules.audience,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, secret, algorithm="HS256")


def decode_token(
    secret: str,
    token: str,
    leeway: int = 30,
    *,
    now: float | None = None,
    rules: TokenRules = TokenRules(),
) -> tuple[uuid.UUID, str]:
    """The token's (user id, role) if it is valid at `now` (default: the current time)."""
    user_id, role, expires = _verified(secret, token, leeway, rules)
    if expires <= (time.time() if now is None else now) - leeway:
        raise AuthenticationError("token expired")
    return user_id, role


@functools.lru_cache(maxsize=10_000)
def _verified(
    secret: str, token: str, leeway: int, rules: TokenRules
) -> tuple[uuid.UUID, str, float]:
    """Signature and claims checked once per token and process: a client sends the same token
    for hours, and verifying it was a tenth of a request's CPU. Of the checked claims only `exp`
    can change its verdict as time passes (`nbf` and `iat` only become valid), so callers check
    `exp` again on each use. Refused tokens raise and are not remembered."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            leeway=leeway,
            issuer=rules.issuer,
            audience=rules.audience,
            options={"require": ["sub", "exp", "iat", "iss", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise AuthenticationError("token expired") from None
    except jwt.InvalidTokenError:
        raise AuthenticationError("invalid token") from None
    if float(claims["exp"]) - float(claims["iat"]) > rules.max_lifetime_seconds:
        raise AuthenticationError("token lifetime exceeds JWT_MAX_LIFETIME_SECONDS")
    try:
        user_id = uuid.UUID(str(claims["sub"]))
    except ValueError:
        raise AuthenticationError("invalid token subject") from None
    role = claims.get("role", Role.USER.value)
    if role not in TOKEN_ROLES:
        raise AuthenticationError("invalid token role")
    return user_id, role, float(claims["exp"])


SESSION_COOKIE = "wallet_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


class CsrfTokenError(PermissionDeniedError):
    code = "csrf_token_invalid"
    title = "Missing or wrong X-CSRF-Token for a request authenticated by the session cookie"


def _bearer_token() -> str:
    return bearer_token_of(request.headers.get("Authorization", ""))


def bearer_token_of(header: str) -> str:
    """The token of an `Authorization: Bearer <token>` header."""
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationError("missing bearer token")
    return token.strip()


def bearer_expiry() -> float:
    """When the request's (valid) bearer token expires, as a Unix time."""
    config = current_app.extensions["wallet"].config
    rules = current_app.extensions["token_rules"]
    return _verified(config.jwt_secret, _bearer_token(), config.jwt_leeway_seconds, rules)[2]


def session_id() -> str | None:
    """The browser session cookie's value, when the request authenticates with it: only
    without an Authorization header (a bearer token, valid or not, always decides)."""
    if "Authorization" in request.headers:
        return None
    return request.cookies.get(SESSION_COOKIE) or None


# WSGI environ key: the request's (user id, role), or the `AuthenticationError` refusing its
# credentials, once decoded (by `bearer_identity`, or by the express lane before it hands a
# request over). Only the server sets environ keys without an HTTP_ prefix.
IDENTITY = "wallet.identity"


def bearer_identity() -> tuple[uuid.UUID, str]:
    """The caller's (user id, role) from their bearer token or, without an Authorization header,
    their browser session cookie; decoded once per request: the rate limiter's key and
    authentication both need it. Raises `AuthenticationError` (every time it is asked) when the
    token or session is missing or invalid."""
    identity: tuple[uuid.UUID, str] | AuthenticationError | None = request.environ.get(IDENTITY)
    if identity is None:
        adapters = wiring()
        config = adapters.config
        cookie = session_id()
        try:
            if cookie is not None:
                found = browser_sessions.resolve(adapters.redis, cookie)
                identity = (found.user_id, found.role)
            else:
                identity = decode_token(
                    config.jwt_secret,
                    _bearer_token(),
                    config.jwt_leeway_seconds,
                    rules=current_app.extensions["token_rules"],
                )
        except AuthenticationError as error:
            identity = error
        request.environ[IDENTITY] = identity
    if isinstance(identity, AuthenticationError):
        raise AuthenticationError(identity.detail)
    return identity


def _check_csrf() -> None:
    """A request authenticated by the cookie and not safe needs the session's CSRF token: a
    browser sends the cookie with another site's form posts, but only this origin's pages can
    read the token."""
    cookie = session_id()
    if cookie is None or request.method in SAFE_METHODS:
        return
    secret = wiring().config.jwt_secret
    if not browser_sessions.csrf_matches(secret, cookie, request.headers.get(CSRF_HEADER)):
        raise CsrfTokenError(f"send the page's CSRF token in {CSRF_HEADER}")


def authenticate() -> Principal:
    """Decode the caller's token and provision them (user and wallet) on first use; a known user
    costs no database statement (the provisioner remembers them). A token naming a system
    account's id is refused (403) and audited before anything is looked up or provisioned: a
    valid signature on one means the token issuer is misused or compromised."""
    adapters = wiring()
    try:
        user_id, role = bearer_identity()
    except AuthenticationError as error:
        _failed(adapters.db, error)
        raise
    _check_csrf()
    if is_reserved(user_id):
        audit.record_alone(
            adapters.db, "auth.reserved_subject", actor_id=None, target=user_id, role=role
        )
        raise ReservedSubjectError("the token names a system account")
    wallet_id = adapters.provisioner.wallet_id_for(user_id, role)
    principal = Principal(user_id=user_id, role=role, wallet_id=wallet_id)
    g.principal = principal
    return principal


def _failed(database: Database, error: AuthenticationError) -> None:
    """A failed authentication is counted per client IP (RATE_LIMIT_AUTH_FAILURES) and audited
    once per IP and window, plus an `auth.throttled` entry with the count when the window
    overflows: a flood of bad tokens adds two audit rows a minute per IP, not one per request
    (every failure is still counted in `api_errors_total{code="unauthorized"}`). Beyond the limit
    the caller gets 429. Every failure is audited while the counter is unreachable."""
    counted = current_app.extensions["limiter"].count_auth_failure()
    if counted is None or counted[0] == 1:
        audit.record_alone(
            database, "auth.failed", actor_id=None, target=request.path, reason=error.detail
        )
    if counted is None:
        return
    failures, window = counted
    if failures <= window.limit:
        return
    if failures == window.limit + 1:
        audit.record_alone(
            database,
            "auth.throttled",
            actor_id=None,
            target=request.path,
            reason=error.detail,
            failures=failures,
        )
    g.rate_limit_window = window
    raise RateLimitedError("too many failed authentications from this address")


def requires(*roles: str) -> Callable[[F], F]:
    """Decorate a view: authenticate, then refuse (403) callers whose role is not listed."""

    def decorator(view: F) -> F:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            principal = authenticate()
            if roles and principal.role not in roles:
                raise PermissionDeniedError(f"requires role {' or '.join(roles)}")
            return view(*args, **kwargs)

        return cast(F, wrapper)

    return decorator


def current_principal() -> Principal:
    return cast(Principal, g.principal)
