"""Small HTTP helpers shared by the blueprints: idempotency key, Prefer: wait, fingerprints."""

from __future__ import annotations

import re
from typing import Any

from flask import Response, request

from app.api.context import wiring
from app.services import idempotency
from app.services.idempotency import Reply
from app.services.transfers import Idempotency

_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+)")


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
    return min(int(match.group(1)), wiring().config.max_prefer_wait_seconds)


def reply(result: Reply, waited: int = 0) -> tuple[dict[str, Any], int, dict[str, str]]:
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if waited:
        headers["Preference-Applied"] = f"wait={waited}"
    return result.body, result.status, headers


def no_store(response: Response) -> Response:
    response.headers.setdefault("Cache-Control", "no-store")
    return response
