"""Browser sessions: an HttpOnly cookie standing for a bearer token, and one-time login codes.

A browser cannot keep a bearer token safely (any script could read it from storage) and
EventSource cannot send one, so `POST /api/session` trades a valid bearer token for a random
session id kept in an HttpOnly cookie. The session lives in Redis under the id's SHA-256 (a copy
of Redis does not hold usable cookies) and ends when the token would have expired, or at
`DELETE /api/session`. With the cookie, unsafe methods need the session's CSRF token, an HMAC of
the session id under JWT_SECRET: a page of this origin can read it from its `<meta>` tag, another
site cannot compute it.

A login code (`make token ARGS="--link"`) is a short-lived single-use secret that stands for a
principal until exchanged for a session: redeeming it is one GETDEL, so two racing exchanges
cannot both succeed, and the link never carries the bearer token itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import uuid
from dataclasses import dataclass, replace

import redis

from app.domain.errors import AuthenticationError, ServiceUnavailableError

SESSION_PREFIX = "browser-session:"
LOGIN_CODE_PREFIX = "login-code:"
LOGIN_CODE_TTL_SECONDS = 120
ID_BYTES = 32


class SessionStoreUnavailableError(ServiceUnavailableError):
    code = "session_store_unavailable"
    title = "Browser sessions are unavailable; use a bearer token or retry"


class LoginCodeInvalidError(AuthenticationError):
    code = "login_code_invalid"
    title = "The login code is unknown, used or expired"


@dataclass(frozen=True)
class BrowserSession:
    user_id: uuid.UUID
    role: str
    ttl_seconds: int = 0  # a login code's: how long the session it starts lasts


def _key(prefix: str, secret: str) -> str:
    return prefix + hashlib.sha256(secret.encode()).hexdigest()


def _dump(user_id: uuid.UUID, role: str, ttl_seconds: int = 0) -> str:
    return json.dumps({"user_id": str(user_id), "role": role, "ttl": ttl_seconds})


def _load(raw: bytes | str) -> BrowserSession:
    data = json.loads(raw)
    return BrowserSession(uuid.UUID(data["user_id"]), str(data["role"]), int(data.get("ttl", 0)))


def start(client: redis.Redis, user_id: uuid.UUID, role: str, ttl_seconds: int) -> str:
    """A new session for the principal, valid `ttl_seconds`; its id (the cookie's value)."""
    session_id = secrets.token_urlsafe(ID_BYTES)
    try:
        client.set(_key(SESSION_PREFIX, session_id), _dump(user_id, role), ex=max(ttl_seconds, 1))
    except redis.RedisError as error:
        raise SessionStoreUnavailableError() from error
    return session_id


def resolve(client: redis.Redis, session_id: str) -> BrowserSession:
    """The principal of a live session; `AuthenticationError` when it is unknown or ended."""
    if not session_id or len(session_id) > 2 * ID_BYTES:
        raise AuthenticationError("invalid session")
    try:
        raw = client.get(_key(SESSION_PREFIX, session_id))
    except redis.RedisError as error:
        raise SessionStoreUnavailableError() from error
    if raw is None:
        raise AuthenticationError("session expired or ended")
    return _load(raw)


def end(client: redis.Redis, session_id: str) -> None:
    try:
        client.delete(_key(SESSION_PREFIX, session_id))
    except redis.RedisError as error:
        raise SessionStoreUnavailableError() from error


def csrf_token(secret: str, session_id: str) -> str:
    return hmac.new(secret.encode(), b"csrf|" + session_id.encode(), hashlib.sha256).hexdigest()


def csrf_matches(secret: str, session_id: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(csrf_token(secret, session_id), str(presented))


def issue_login_code(
    client: redis.Redis, user_id: uuid.UUID, role: str, session_ttl_seconds: int
) -> str:
    """A single-use code standing for the principal for LOGIN_CODE_TTL_SECONDS; the session it
    starts lasts `session_ttl_seconds`."""
    code = secrets.token_urlsafe(ID_BYTES)
    value = _dump(user_id, role, session_ttl_seconds)
    client.set(_key(LOGIN_CODE_PREFIX, code), value, ex=LOGIN_CODE_TTL_SECONDS)
    return code


def redeem_login_code(client: redis.Redis, code: str, max_ttl_seconds: int) -> BrowserSession:
    """The principal a code stood for, its session lasting at most `max_ttl_seconds` (a token's
    longest life); the code is gone afterwards (GETDEL: used once)."""
    if not code or len(code) > 2 * ID_BYTES:
        raise LoginCodeInvalidError()
    try:
        raw = client.getdel(_key(LOGIN_CODE_PREFIX, code))
    except redis.RedisError as error:
        raise SessionStoreUnavailableError() from error
    if raw is None:
        raise LoginCodeInvalidError()
    found = _load(raw)
    return replace(found, ttl_seconds=min(found.ttl_seconds, max_ttl_seconds))
