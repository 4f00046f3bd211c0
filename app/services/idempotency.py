"""Idempotency keys (IETF draft rules), kept in the same database transaction as the business row.

Same key + same request → the stored response is replayed; same key + different request → 422;
same key while the first request is still in flight (it is waiting for settlement) → 409. Keys
are scoped to the caller and expire after `idempotency_ttl_hours` (a beat job deletes them).
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, text, update
from sqlalchemy.orm import Session

from app.domain.errors import (
    IdempotencyKeyInFlightError,
    IdempotencyKeyRequiredError,
    IdempotencyKeyReusedError,
)
from app.models import IdempotencyKey

MAX_KEY_LENGTH = 255
# Printable ASCII (what HTTP header values carry without ambiguity), as the OpenAPI document says.
KEY_PATTERN = rf"^[\x20-\x7e]{{1,{MAX_KEY_LENGTH}}}$"
_KEY = re.compile(KEY_PATTERN.removeprefix("^").removesuffix("$"))


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    replayed: bool = False


def validate_key(raw: str | None) -> str:
    """The key without surrounding spaces: 1-255 printable ASCII characters as sent."""
    raw = raw or ""
    key = raw.strip()
    if not key:
        raise IdempotencyKeyRequiredError()
    if not _KEY.fullmatch(raw):
        raise IdempotencyKeyRequiredError(
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable ASCII characters"
        )
    return key


def fingerprint(method: str, path: str, payload: Any) -> str:
    """A digest of the validated request, so formatting differences in the body don't count."""
    canonical = json.dumps([method, path, payload], sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def replay(
    digest: str, fingerprint: str, state: str, locked_until: datetime | None, stored: Reply
) -> Reply:
    """The answer to a request whose key is already taken (the claim itself happens in the
    database, with the request's own writes: `accept_transactions`). A concurrent first request
    holds the unique index entry until it commits; the claim waits for it and then sees its row,
    so 40 simultaneous duplicates produce one transaction."""
    if fingerprint != digest:
        raise IdempotencyKeyReusedError()
    if state == "in_flight" and locked_until and locked_until > datetime.now(UTC):
        raise IdempotencyKeyInFlightError()
    return stored


_CLAIM = text(
    """
    INSERT INTO idempotency_keys AS k
           (owner_id, key, fingerprint, state, response_status, response_body, expires_at)
    VALUES (:owner, :key, :fingerprint, 'completed', :status, CAST(:body AS jsonb), :expires_at)
    ON CONFLICT (owner_id, key) DO UPDATE
       SET fingerprint = EXCLUDED.fingerprint, state = EXCLUDED.state,
           response_status = EXCLUDED.response_status, response_body = EXCLUDED.response_body,
           transaction_id = NULL, locked_until = NULL, expires_at = EXCLUDED.expires_at,
           created_at = now()
     WHERE k.expires_at <= now()
    RETURNING k.id
    """
)
_STORED = text(
    "SELECT fingerprint, state, locked_until, response_status, response_body"
    " FROM idempotency_keys WHERE owner_id = :owner AND key = :key"
)


def claim(
    session: Session, owner_id: uuid.UUID, key: str, digest: str, reply: Reply, ttl_hours: int
) -> Reply | None:
    """Claim `key` for a request that answers `reply`, in the caller's unit of work (what
    `accept_transactions` does for money movements, for requests that record something else:
    escrow holds). None when claimed: go on, and roll back with the request if it is refused;
    else the stored answer to replay (or the refusal to raise)."""
    claimed = session.execute(
        _CLAIM,
        {
            "owner": owner_id,
            "key": key,
            "fingerprint": digest,
            "status": reply.status,
            "body": json.dumps(reply.body),
            "expires_at": datetime.now(UTC) + timedelta(hours=ttl_hours),
        },
    ).first()
    if claimed is not None:
        return None
    row = session.execute(_STORED, {"owner": owner_id, "key": key}).one()
    return replay(
        digest,
        row.fingerprint,
        row.state,
        row.locked_until,
        Reply(row.response_status, row.response_body, replayed=True),
    )


def store(session: Session, key_id: int, reply: Reply, *, in_flight: bool = False) -> None:
    session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.id == key_id)
        .values(
            state="in_flight" if in_flight else "completed",
            response_status=reply.status,
            response_body=reply.body,
            transaction_id=_uuid_or_none(reply.body.get("transaction_id")),
        )
    )


def _uuid_or_none(value: Any) -> uuid.UUID | None:
    return uuid.UUID(str(value)) if value else None


def expire(session: Session) -> int:
    """Delete keys past their expiry; returns how many."""
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at < datetime.now(UTC))
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
