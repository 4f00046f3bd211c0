"""The audit log: append-only (a trigger refuses UPDATE/DELETE/TRUNCATE). Entries are written in
the same database transaction as the operation they record; the request id and client IP come
from the current request or the task it caused."""

from __future__ import annotations

import contextvars
import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select, text
from sqlalchemy.orm import Session

from app import logs
from app.db import Database, json_rows
from app.models import AuditLog

log = logging.getLogger(__name__)
client_ip: contextvars.ContextVar[str | None] = contextvars.ContextVar("client_ip", default=None)


def entry(
    action: str, *, actor_id: uuid.UUID | None, target: Any = None, **details: Any
) -> dict[str, Any]:
    """One audit row; `details` may hold UUIDs and Decimals (serialised exactly)."""
    return {
        "action": action,
        "actor_id": actor_id,
        "target": None if target is None else str(target),
        "request_id": logs.request_id.get(),
        "ip": client_ip.get(),
        "details": details,
    }


def record(
    db: Session | Connection,
    action: str,
    *,
    actor_id: uuid.UUID | None,
    target: Any = None,
    **details: Any,
) -> None:
    record_many(db, [entry(action, actor_id=actor_id, target=target, **details)])


_INSERT_MANY = text(
    """
    INSERT INTO audit_log (action, actor_id, target, request_id, ip, details)
    SELECT action, actor_id, target, request_id, ip, details
      FROM jsonb_to_recordset(CAST(:rows AS jsonb))
           AS v(action text, actor_id uuid, target text, request_id text, ip text, details jsonb)
    """
)


def record_many(db: Session | Connection, entries: Sequence[dict[str, Any]]) -> None:
    """One set-based statement however many entries (a settlement batch writes thousands)."""
    if not entries:
        return
    db.execute(_INSERT_MANY, {"rows": json_rows(list(entries))})


def record_alone(
    database: Database,
    action: str,
    *,
    actor_id: uuid.UUID | None,
    target: Any = None,
    **details: Any,
) -> None:
    """In its own transaction (for attempts that failed and rolled back), best effort."""
    try:
        with database.transaction() as session:
            record(session, action, actor_id=actor_id, target=target, **details)
    except Exception as exc:  # noqa: BLE001 - never turn the original answer into a 500
        log.warning("could not audit %s: %s", action, exc)


def search(
    session: Session,
    *,
    actor: uuid.UUID | None = None,
    action: str | None = None,
    target: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 50,
    before: int | None = None,
) -> tuple[list[AuditLog], int | None]:
    conditions = []
    if actor is not None:
        conditions.append(AuditLog.actor_id == actor)
    if action:
        conditions.append(AuditLog.action == action)
    if target:
        conditions.append(AuditLog.target == target)
    if since:
        conditions.append(AuditLog.occurred_at >= since)
    if until:
        conditions.append(AuditLog.occurred_at < until)
    if before is not None:
        conditions.append(AuditLog.id < before)
    rows = session.scalars(
        select(AuditLog)
        .where(and_(True, *conditions))
        .order_by(AuditLog.id.desc())
        .limit(limit + 1)
    ).all()
    return list(rows[:limit]), (rows[limit - 1].id if len(rows) > limit else None)
