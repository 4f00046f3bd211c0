"""The notification outbox: written in the settling database transaction, pushed after commit
(Redis pub/sub for live SSE streams, webhook deliveries), read through the API."""

from __future__ import annotations

import logging
import uuid
from decimal import Decimal
from typing import Any

import redis
from sqlalchemy import Connection, func, select, text, update
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.db import json_rows
from app.domain.errors import WalletError
from app.domain.money import to_wire
from app.domain.notifications import NewNotification, for_outcome
from app.models import Notification, Wallet
from app.queue import WEBHOOK_DELIVER

log = logging.getLogger(__name__)

_INSERT = text(
    """
    INSERT INTO notifications (user_id, kind, transaction_id, amount, data, webhook_status,
                               webhook_next_at)
    SELECT u, k, t, a, d, CAST(:webhook AS text),
           CASE WHEN CAST(:webhook AS text) IS NULL THEN NULL ELSE now() END
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS v(u uuid, k text, t uuid, a numeric, d jsonb)
    RETURNING id, user_id
    """
)


class NotificationNotFoundError(WalletError):
    code = "notification_not_found"
    status = 404
    title = "Notification not found"


def _jsonable(value: Any) -> Any:
    return to_wire(value) if isinstance(value, Decimal) else value


def write(
    db: Session | Connection, items: list[NewNotification], *, webhooks: bool
) -> list[tuple[int, uuid.UUID]]:
    """Insert `items` in the caller's transaction; returns their (id, user_id), to push after
    commit. Set-based: one statement for a whole settlement batch."""
    if not items:
        return []
    rows = db.execute(
        _INSERT,
        {
            "rows": json_rows(
                [
                    {
                        "u": n.user_id,
                        "k": n.kind,
                        "t": n.transaction_id,
                        "a": n.amount,
                        "d": {k: _jsonable(v) for k, v in n.data.items()},
                    }
                    for n in items
                ]
            ),
            "webhook": "pending" if webhooks else None,
        },
    ).all()
    return [(row.id, row.user_id) for row in rows]


def as_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "user_id": str(row.user_id),
        "kind": row.kind,
        "transaction_id": str(row.transaction_id) if row.transaction_id else None,
        "amount": to_wire(row.amount) if row.amount is not None else None,
        "data": row.data,
        "created_at": row.created_at.isoformat(),
        "read": row.read_at is not None,
    }


def channel(user_id: uuid.UUID | str) -> str:
    return f"notifications:{user_id}"


def dispatch(wiring: Wiring, written: list[tuple[int, uuid.UUID]]) -> None:
    """After commit: wake each affected user's live streams (one message per user carrying the
    newest id; streams read the notifications themselves) and queue webhook deliveries. Best
    effort — streams also catch up from the database and a beat job retries due webhooks."""
    if not written:
        return
    newest: dict[uuid.UUID, int] = {}
    for notification_id, user_id in written:
        newest[user_id] = max(notification_id, newest.get(user_id, 0))
    try:
        pipe = wiring.redis.pipeline(transaction=False)
        for user_id, notification_id in newest.items():
            pipe.publish(channel(user_id), str(notification_id))
        pipe.execute()
    except redis.RedisError as exc:
        log.warning("could not publish %s notifications: %s", len(written), exc)
    if wiring.config.webhook_url:
        for notification_id, _ in written:
            wiring.queue.send(WEBHOOK_DELIVER, notification_id)


def write_outcome(
    wiring: Wiring,
    session: Session,
    *,
    kind: str,
    status: str,
    transaction_id: uuid.UUID,
    amount: Decimal,
    debit_wallet: uuid.UUID | None,
    credit_wallet: uuid.UUID | None,
    reason: str | None = None,
) -> list[tuple[int, uuid.UUID]]:
    """Notifications for an outcome decided outside the ledger batches (deposit expiry,
    withdrawal completion or failure), in the caller's transaction."""
    users = {
        w.id: (w.user_id if w.kind == "user" else None, w.balance)
        for w in session.scalars(
            select(Wallet).where(Wallet.id.in_([x for x in (debit_wallet, credit_wallet) if x]))
        )
    }
    debit = users.get(debit_wallet, (None, None)) if debit_wallet else (None, None)
    credit = users.get(credit_wallet, (None, None)) if credit_wallet else (None, None)
    items = for_outcome(
        kind=kind,
        status=status,
        transaction_id=transaction_id,
        amount=amount,
        debit_user=debit[0],
        credit_user=credit[0],
        reason=reason,
        debit_balance=debit[1],
        credit_balance=credit[1],
    )
    return write(session, items, webhooks=bool(wiring.config.webhook_url))


def list_for(
    session: Session, user_id: uuid.UUID, *, unread: bool | None, limit: int, before: int | None
) -> tuple[list[dict[str, Any]], int | None]:
    """Newest first; `before` is the id cursor."""
    query = select(Notification).where(Notification.user_id == user_id)
    if unread is True:
        query = query.where(Notification.read_at.is_(None))
    elif unread is False:
        query = query.where(Notification.read_at.is_not(None))
    if before is not None:
        query = query.where(Notification.id < before)
    rows = session.scalars(query.order_by(Notification.id.desc()).limit(limit + 1)).all()
    items = [as_json(r) for r in rows[:limit]]
    return items, (items[-1]["id"] if len(rows) > limit and items else None)


def since(
    session: Session | Connection, user_id: uuid.UUID, after_id: int, limit: int = 500
) -> list[dict[str, Any]]:
    """Oldest first: what a stream resuming after `after_id` missed."""
    rows = session.execute(
        select(
            Notification.id,
            Notification.user_id,
            Notification.kind,
            Notification.transaction_id,
            Notification.amount,
            Notification.data,
            Notification.created_at,
            Notification.read_at,
        )
        .where(Notification.user_id == user_id, Notification.id > after_id)
        .order_by(Notification.id)
        .limit(limit)
    ).all()
    return [as_json(r) for r in rows]


def latest_id(db: Session | Connection, user_id: uuid.UUID) -> int:
    return int(
        db.scalar(
            select(func.coalesce(func.max(Notification.id), 0)).where(
                Notification.user_id == user_id
            )
        )
        or 0
    )


_NEWEST = text(
    """
    SELECT u.id, (SELECT max(n.id) FROM notifications n WHERE n.user_id = u.id) AS newest
      FROM unnest(CAST(:users AS uuid[])) AS u(id)
    """
)


def newest_ids(db: Session | Connection, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Each user's newest notification id (users without any are left out): one statement, one
    backward index probe per user however long their history."""
    rows = db.execute(_NEWEST, {"users": user_ids}).all()
    return {row.id: int(row.newest) for row in rows if row.newest is not None}


def mark_read(session: Session, user_id: uuid.UUID, notification_id: int) -> dict[str, Any]:
    row = session.scalar(
        update(Notification)
        .where(Notification.id == notification_id, Notification.user_id == user_id)
        .values(read_at=func.coalesce(Notification.read_at, func.now()))
        .returning(Notification)
    )
    if row is None:
        raise NotificationNotFoundError()
    return as_json(row)


def mark_all_read(session: Session, user_id: uuid.UUID) -> int:
    result = session.execute(
        update(Notification)
        .where(Notification.user_id == user_id, Notification.read_at.is_(None))
        .values(read_at=func.now())
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
