"""Webhook delivery of the notification outbox: signed POSTs, retried with exponential backoff.

A delivery first *claims* the row with a lease (one compare-and-set UPDATE that also counts the
attempt), commits, and only then sends. A duplicate or concurrent task finds nothing to claim and
sends nothing; a worker that dies mid-POST leaves a lease that expires, and the beat job
(`due`) hands the row out again. The outcome is recorded only if the row still carries our
attempt number, so a late answer cannot overwrite a newer attempt's result.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import httpx2
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.models import Notification
from app.services import notifications

PENDING, DELIVERED, FAILED = "pending", "delivered", "failed"
STATUSES = (PENDING, DELIVERED, FAILED)
MAX_BACKOFF_SECONDS = 300
# A claimed row is not handed out again before the POST (connect + read timeouts) must be over.
LEASE_MARGIN_SECONDS = 10
SIGNATURE_TOLERANCE_SECONDS = 300
# Rows just written are delivered by the task `dispatch` sends; the beat job leaves them that long.
DUE_GRACE_SECONDS = 2.0
_ERROR_MAX = 500

_CLAIM = text(
    """
    UPDATE notifications
       SET webhook_attempts = webhook_attempts + 1,
           webhook_next_at = clock_timestamp() + make_interval(secs => :lease)
     WHERE id = :id AND webhook_status = 'pending' AND webhook_next_at <= clock_timestamp()
    RETURNING id, user_id, kind, transaction_id, amount, data, created_at, read_at,
              webhook_attempts
    """
)
_DELIVERED = text(
    """
    UPDATE notifications
       SET webhook_status = 'delivered', webhook_delivered_at = clock_timestamp(),
           webhook_next_at = NULL
     WHERE id = :id AND webhook_status = 'pending' AND webhook_attempts = :attempts
    """
)
_NOT_DELIVERED = text(
    """
    UPDATE notifications
       SET webhook_status = :status, webhook_last_error = :error,
           webhook_next_at = CASE WHEN :status = 'pending'
                                  THEN clock_timestamp() + make_interval(secs => :delay) END
     WHERE id = :id AND webhook_status = 'pending' AND webhook_attempts = :attempts
    """
)
_DUE = text(
    """
    SELECT id FROM notifications
     WHERE webhook_status = 'pending'
       AND webhook_next_at <= clock_timestamp() - make_interval(secs => :grace)
     ORDER BY webhook_next_at
     LIMIT :limit
    """
)


@dataclass(frozen=True)
class Attempt:
    """What one delivery did: `noop` (nothing to claim), `delivered`, `pending` (failed, try
    again in `retry_in` seconds), `failed` (attempts used up) or `superseded` (a newer attempt
    owns the row)."""

    status: str
    retry_in: float | None = None


def sign(secret: str, timestamp: int | str, body: str) -> str:
    """Hex HMAC-SHA256 of `"{timestamp}.{body}"`: binding the timestamp stops replays of an old
    body with a fresh timestamp."""
    message = f"{timestamp}.{body}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: str,
    body: str,
    signature: str,
    *,
    now: float | None = None,
    tolerance_seconds: int = SIGNATURE_TOLERANCE_SECONDS,
) -> bool:
    """What a receiver does with `X-Webhook-Timestamp` and `X-Webhook-Signature`: recompute the
    signature (constant-time compare) and refuse timestamps outside the tolerance."""
    scheme, _, digest = signature.partition("=")
    if scheme != "sha256" or not timestamp.isdigit():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp)) > tolerance_seconds:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), digest)


def backoff_seconds(attempts: int) -> int:
    return int(min(2**attempts, MAX_BACKOFF_SECONDS))


def payload(row: Any) -> dict[str, Any]:
    """The notification as the API shows it, minus `read`: per-user UI state that may change
    between attempts, and every attempt must carry the same body."""
    body = notifications.as_json(row)
    body.pop("read", None)
    return body


def deliver(wiring: Wiring, notification_id: int) -> Attempt:
    config = wiring.config
    if not config.webhook_url:
        return Attempt("noop")
    lease = 2 * config.webhook_timeout_seconds + LEASE_MARGIN_SECONDS
    with wiring.db.transaction() as session:
        row = session.execute(_CLAIM, {"id": notification_id, "lease": lease}).first()
    if row is None:
        return Attempt("noop")
    error = _post(wiring, row)
    attempts = int(row.webhook_attempts)
    with wiring.db.transaction() as session:
        if error is None:
            done = session.execute(_DELIVERED, {"id": row.id, "attempts": attempts}).rowcount  # type: ignore[attr-defined]
            return Attempt(DELIVERED if done else "superseded")
        status = FAILED if attempts >= config.webhook_max_attempts else PENDING
        delay = backoff_seconds(attempts)
        done = session.execute(
            _NOT_DELIVERED,
            {
                "id": row.id,
                "attempts": attempts,
                "status": status,
                "error": error[:_ERROR_MAX],
                "delay": delay,
            },
        ).rowcount  # type: ignore[attr-defined]
    if not done:
        return Attempt("superseded")
    return Attempt(status, float(delay) if status == PENDING else None)


def _post(wiring: Wiring, row: Any) -> str | None:
    """POST the signed notification; the error text, or None on a 2xx answer."""
    config = wiring.config
    body = json.dumps(payload(row), separators=(",", ":"), sort_keys=True)
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Webhook-Id": str(row.id),
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": f"sha256={sign(config.webhook_secret, timestamp, body)}",
    }
    try:
        response = _client().post(
            config.webhook_url,
            content=body.encode(),
            headers=headers,
            timeout=config.webhook_timeout_seconds,
        )
    except httpx2.TimeoutException as exc:
        return f"timeout after {config.webhook_timeout_seconds}s: {type(exc).__name__}"
    except (httpx2.HTTPError, httpx2.InvalidURL) as exc:
        return f"{type(exc).__name__}: {exc}"
    if response.is_success:
        return None
    return f"HTTP {response.status_code}: {response.text[:200]}"


_clients: dict[int, httpx2.Client] = {}
_clients_lock = threading.Lock()


def _client() -> httpx2.Client:
    """One HTTP client (connection pool, TLS context) per process, made on first use: building
    one costs ~30 ms of CPU, far more than a delivery. Keyed by pid so a forked worker child never
    shares its parent's sockets."""
    pid = os.getpid()
    with _clients_lock:
        if pid not in _clients:
            _clients[pid] = httpx2.Client(follow_redirects=False)
        return _clients[pid]


def due(wiring: Wiring, limit: int = 1000) -> list[int]:
    """Pending deliveries whose retry time (or lease) has passed: their countdown message was
    lost, or their worker died."""
    if not wiring.config.webhook_url:
        return []
    with wiring.db.transaction() as session:
        ids = session.scalars(_DUE, {"grace": DUE_GRACE_SECONDS, "limit": limit}).all()
    return [int(i) for i in ids]


def list_deliveries(
    session: Session, *, status: str | None, limit: int, cursor: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; `cursor` is the id to continue below."""
    query = select(Notification).where(Notification.webhook_status.is_not(None))
    if status is not None:
        query = query.where(Notification.webhook_status == status)
    if cursor is not None:
        query = query.where(Notification.id < cursor)
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)).all()
    items = [_delivery(r) for r in rows[:limit]]
    return items, (rows[limit - 1].id if len(rows) > limit else None)


def _delivery(row: Notification) -> dict[str, Any]:
    return {
        "notification_id": row.id,
        "user_id": row.user_id,
        "kind": row.kind,
        "status": row.webhook_status,
        "attempts": row.webhook_attempts,
        "next_attempt_at": row.webhook_next_at,
        "last_error": row.webhook_last_error,
        "delivered_at": row.webhook_delivered_at,
        "created_at": row.created_at,
    }
