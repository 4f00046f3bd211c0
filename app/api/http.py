"""Small HTTP helpers shared by the blueprints: idempotency key, Prefer: wait, fingerprints."""

from __future__ import annotations

import re
from typing import Any

import orjson
from flask import Response, request

from app.api.context import wiring
from app.services import idempotency
from app.services.idempotency import Reply
from app.services.transfers import Idempotency

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*([0-9]+)")
_WAIT_DIGITS = 6  # more digits than this is more than any cap: no int() of 5,000 digits

# The Idempotency-Key header as documented in every operation that takes one.
IDEMPOTENCY_KEY_PARAMETER = {
    "in": "header",
    "name": "Idempotency-Key",
    "required": True,
    "description": "Your unique key for this request (e.g. a UUID); a retry sends the same one.",
    "schema": {
        "type": "string",
        "minLength": 1,
        "maxLength": idempotency.MAX_KEY_LENGTH,
        "pattern": idempotency.KEY_PATTERN,
    },
}


def idempotency_for(payload: Any) -> Idempotency:
    """The request's Idempotency-Key (400 when missing) and the fingerprint of its validated
    payload."""
    key = idempotency.validate_key(request.headers.get("Idempotency-Key"))
    return Idempotency(key, idempotency.fingerprint(request.method, request.path, payload))


def prefer_wait() -> int:
    """`Prefer: wait=N` (RFC 7240), capped at the configured maximum; 0 when absent."""
    match = _WAIT.search(request.headers.get("Prefer", ""))
    if not match:
        return 0
    cap = wiring().config.max_prefer_wait_seconds
    digits = match.group(1).lstrip("0") or "0"
    return cap if len(digits) > _WAIT_DIGITS else min(int(digits), cap)


def reply(result: Reply, waited: int = 0) -> Response:
    """The answer to a money request. Its body is already in wire form (it is also what a replay of
    the Idempotency-Key answers), so it is sent as it is rather than dumped again through the
    documented schema, which would give the same JSON (tests/unit/test_reply_bodies.py)."""
    response = Response(orjson.dumps(result.body), result.status, mimetype="application/json")
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    if waited:
        response.headers["Preference-Applied"] = f"wait={waited}"
    return response
