"""Submitting a request once per Idempotency-Key: accept it in one round trip
(`app.services.recording`), replay the stored answer to a repeated key, kick settlement after
the commit, and optionally wait for the outcome (`Prefer: wait`)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from app.bootstrap import Wiring
from app.db import json_rows
from app.domain.money import to_wire
from app.domain.transactions import Status
from app.models import LedgerEntry, Transaction
from app.services import idempotency
from app.services.idempotency import Reply
from app.services.recording import ACCEPT_SEEN, Submission, accept_params, refusals


def submit(
    wiring: Wiring,
    submission: Submission,
    *,
    owner_id: uuid.UUID,
    key: str,
    digest: str,
    reply: Callable[[list[uuid.UUID]], Reply] | None = None,
    wait_seconds: float = 0,
    view_wallet_id: uuid.UUID | None = None,
) -> Reply:
    """Accept `submission` once per idempotency key in one database round trip, then kick
    settlement unless a job running on its shard will find it; a repeated key answers what the
    first request answered. `reply` builds the answer from the new transaction ids (default:
    202 PENDING for the one transaction). Optionally wait for the (single) transaction to
    settle and answer its final state."""
    config = wiring.config
    ids = submission.new_ids()
    accepted = reply(ids) if reply else pending_reply(ids[0])
    now = datetime.now(UTC)
    params = accept_params(submission, ids, config.settlement_shards)
    params.update(
        owner=owner_id,
        key=key,
        fingerprint=digest,
        expires_at=now + timedelta(hours=config.idempotency_ttl_hours),
        locked_until=now + timedelta(seconds=wait_seconds + 5) if wait_seconds else None,
        response_status=accepted.status,
        response=json_rows(accepted.body),
    )
    with wiring.db.cursor() as cur, refusals():
        row = cur.execute(ACCEPT_SEEN, params).fetchone()
    assert row is not None
    if row.key_id is None:
        return idempotency.replay(
            digest,
            row.replay_fingerprint,
            row.replay_state,
            row.replay_locked_until,
            Reply(row.replay_status, row.replay_body, replayed=True),
        )
    if not row.settling:  # a job running on the shard will find it (app/services/settlement.py)
        wiring.queue.kick_settlement(row.shard)
    if not wait_seconds:
        return accepted
    final = accepted
    if len(ids) == 1 and view_wallet_id is not None:
        final = wait_for_settlement(wiring, ids[0], view_wallet_id, wait_seconds, accepted)
    with wiring.db.transaction() as session:
        idempotency.store(session, row.key_id, final)
    return final


def wait_for_settlement(
    wiring: Wiring, tx_id: uuid.UUID, wallet_id: uuid.UUID, seconds: float, pending: Reply
) -> Reply:
    deadline = time.monotonic() + seconds
    delay = 0.01
    while True:
        with wiring.db.transaction() as session:
            row = session.execute(
                select(Transaction.status, Transaction.failure_reason, LedgerEntry.balance_after)
                .outerjoin(
                    LedgerEntry,
                    (LedgerEntry.transaction_id == Transaction.id)
                    & (LedgerEntry.wallet_id == wallet_id),
                )
                .where(Transaction.id == tx_id)
            ).one()
        if row.status != Status.PENDING.value:
            return settled_reply(pending, row.status, row.balance_after, row.failure_reason)
        if time.monotonic() + delay > deadline:
            return pending
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


def settled_reply(
    pending: Reply, status: str, balance_after: Decimal | None, failure_reason: str | None
) -> Reply:
    """The 200 answer of a request that settled within its `Prefer: wait`."""
    body = dict(pending.body)
    body.update(
        success=status == Status.COMPLETED.value,
        status=status,
        balance_after=None if balance_after is None else to_wire(balance_after),
        failure_reason=failure_reason,
    )
    return Reply(200, body)


def pending_reply(tx_id: uuid.UUID, status: int = 202) -> Reply:
    return Reply(
        status,
        {
            "success": True,
            "transaction_id": str(tx_id),
            "status": Status.PENDING.value,
            "balance_after": None,
        },
    )
