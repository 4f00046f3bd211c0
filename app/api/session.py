"""The browser's session: a bearer token traded for an HttpOnly cookie, and ended."""

from __future__ import annotations

import time
import uuid

from flask import Response, request
from flask_smorest import Blueprint

from app.api.auth import (
    SESSION_COOKIE,
    bearer_expiry,
    current_principal,
    requires,
    session_id,
)
from app.api.context import wiring
from app.api.wallet import SECURITY, WALLET_ROLES
from app.domain.errors import AuthenticationError
from app.services import audit, browser_sessions

bp = Blueprint(
    "session",
    __name__,
    url_prefix="/api/session",
    description="A session cookie for the wallet page (EventSource cannot send a bearer token)",
)
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})


def is_loopback(host: str) -> bool:
    """Whether the request's Host is this machine (the cookie may then go without Secure: the
    development server speaks plain HTTP)."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in LOOPBACK_HOSTS or name.endswith(".localhost")


def set_session_cookie(response: Response, value: str, max_age: int) -> Response:
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="Lax",
        secure=not is_loopback(request.host),
    )
    return response


def start_session(user_id: uuid.UUID, role: str, ttl_seconds: int, via: str) -> Response:
    """204 with a new session's cookie (audited: who, and whether by a bearer token or a login
    link)."""
    created = browser_sessions.start(wiring().redis, user_id, role, ttl_seconds)
    audit.record_alone(
        wiring().db, "session.started", actor_id=user_id, target=user_id, via=via, ttl=ttl_seconds
    )
    return set_session_cookie(Response(status=204), created, ttl_seconds)


@bp.route("", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.response(204)
@bp.doc(security=SECURITY)
def create() -> Response:
    """Trade the bearer token for a session cookie (HttpOnly, SameSite=Lax, Secure off
    loopback) lasting as long as the token. The API then accepts the cookie instead of the
    token; with it, unsafe methods need the page's `X-CSRF-Token`."""
    if session_id() is not None:  # the cookie alone cannot make another session
        raise AuthenticationError("POST /api/session needs a bearer token")
    principal = current_principal()
    ttl = int(bearer_expiry() - time.time())
    if ttl <= 0:
        raise AuthenticationError("token expired")
    return start_session(principal.user_id, principal.role, ttl, via="bearer")


@bp.route("", methods=["DELETE"])
@requires(*WALLET_ROLES)
@bp.response(204)
@bp.doc(security=SECURITY)
def delete() -> Response:
    """End the browser session (the cookie stops working at once, copies included)."""
    cookie = session_id()
    if cookie is not None:
        browser_sessions.end(wiring().redis, cookie)
        user_id = current_principal().user_id
        audit.record_alone(wiring().db, "session.ended", actor_id=user_id, target=user_id)
    return set_session_cookie(Response(status=204), "", 0)
