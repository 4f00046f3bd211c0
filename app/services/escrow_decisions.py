"""Deciding escrow holds: capture and void (the concurrency rules: `app.services.escrow`)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.db import after_commit
from app.domain.errors import (
    HoldNotActiveError,
    HoldNotFoundError,
    RecipientNotFoundError,
    SelfTransferError,
)
from app.domain.escrow import ACTIVE, CAPTURED, RELEASED, capture_of, check_decidable
from app.domain.money import to_wire
from app.domain.notifications import HOLD_CAPTURED, HOLD_RELEASED, NewNotification
from app.domain.transactions import Kind, Status
from app.services import audit, notifications, reservations
from app.services.escrow import USER_WALLET
from app.services.idempotency import Reply
from app.services.recording import shard_of
from app.services.wallets import Provisioner, SystemWallets

_LOCK = text(
    """
    SELECT h.*, w.user_id FROM escrow_holds h JOIN wallets w ON w.id = h.wallet_id
     WHERE h.id = :id
       FOR UPDATE OF h
    """
)
_INSERT_TRANSACTION = text(
    """
    INSERT INTO transactions
           (id, kind, debit_wallet_id, credit_wallet_id, amount, seq, shard, initiator_id, note,
            details, created_at)
    VALUES (:id, :kind, :debit, :credit, :amount, :seq, :shard, :initiator, :note,
            CAST(:details AS jsonb), clock_timestamp())
    """
)
_CAPTURED = text(
    """
    UPDATE escrow_holds
       SET status = 'captured', decided_at = now(), captured_amount = :captured,
           transaction_id = :transaction_id
     WHERE id = :id AND status = 'active'
    """
)
_RELEASED = text(
    """
    UPDATE escrow_holds SET status = 'released', decided_at = now(), release_reason = :reason
     WHERE id = :id AND status = 'active'
    """
)


def capture(
    wiring: Wiring,
    system: SystemWallets,
    provisioner: Provisioner,
    service_id: uuid.UUID,
    hold_id: uuid.UUID,
    *,
    amount: Decimal | None,
    recipient_id: uuid.UUID | None,
) -> Reply:
    """Move up to the held amount (all of it by default) to the platform wallet, or to the
    recipient user, as a PENDING transaction the settlement pipeline settles; the rest of the
    hold is released. A repeated capture answers the capture that happened."""
    config = wiring.config
    if recipient_id is not None:
        provisioner.ensure_users([recipient_id])
    platform = system.platform()
    with wiring.db.transaction() as session:
        hold = _lock(session, service_id, hold_id)
        if hold.status == CAPTURED:
            body = captured_body(hold_id, hold.amount, hold.captured_amount, hold.transaction_id)
            return Reply(202, body, replayed=True)
        check_decidable(hold.status, hold.expires_at, datetime.now(UTC))
        decided = capture_of(hold.amount, amount)
        captured = decided.captured
        kind, credit = Kind.SERVICE_FEE, platform
        if recipient_id is not None:
            kind, credit = Kind.TRANSFER, session.scalar(USER_WALLET, {"user_id": recipient_id})
            if credit is None:
                raise RecipientNotFoundError(f"no user {recipient_id}")
            if credit == hold.wallet_id:
                raise SelfTransferError("the hold's own wallet cannot receive its capture")
        # the captured part stays reserved (now for its transaction, which takes the wallet's
        # next seq); the remainder is released
        seq = reservations.change(
            session.connection(),
            [
                reservations.Change(
                    hold.wallet_id,
                    reserved=-(hold.amount - captured),
                    on_hold=-hold.amount,
                    sequenced=1,
                    used=True,
                )
            ],
        )[hold.wallet_id].next_seq
        tx_id = uuid.uuid4()
        shard = shard_of(hold.wallet_id, config.settlement_shards)
        after_commit(session, lambda: wiring.queue.kick_settlement(shard))
        session.execute(
            _INSERT_TRANSACTION,
            {
                "id": tx_id,
                "kind": kind.value,
                "debit": hold.wallet_id,
                "credit": credit,
                "amount": captured,
                "seq": seq,
                "shard": shard,
                "initiator": service_id,
                "note": hold.reason,
                "details": json.dumps({"hold_id": str(hold_id), "reason": hold.reason}),
            },
        )
        session.execute(_CAPTURED, {"id": hold_id, "captured": captured, "transaction_id": tx_id})
        audit.record_many(
            session,
            [
                audit.entry(
                    f"{kind.value}.submitted",
                    actor_id=service_id,
                    target=tx_id,
                    amount=captured,
                    debit_wallet=hold.wallet_id,
                    credit_wallet=credit,
                    hold_id=hold_id,
                ),
                audit.entry(
                    "hold.captured",
                    actor_id=service_id,
                    target=hold_id,
                    captured=captured,
                    released=decided.released,
                    transaction_id=tx_id,
                ),
            ],
        )
        body = captured_body(hold_id, hold.amount, captured, tx_id)
        written = notifications.write(
            session,
            [
                NewNotification(
                    hold.user_id,
                    HOLD_CAPTURED,
                    tx_id,
                    -captured,
                    {
                        "hold_id": str(hold_id),
                        "reason": hold.reason,
                        "released_amount": decided.released,
                        "status": Status.PENDING.value,
                    },
                )
            ],
            webhooks=bool(config.webhook_url),
        )
    notifications.dispatch(wiring, written)
    return Reply(202, body)


def void(wiring: Wiring, service_id: uuid.UUID, hold_id: uuid.UUID) -> Reply:
    """Release the whole hold. A repeated void answers the release that happened."""
    with wiring.db.transaction() as session:
        hold = _lock(session, service_id, hold_id)
        if hold.status == RELEASED:
            return Reply(
                200, released_body(hold_id, hold.amount, hold.release_reason), replayed=True
            )
        if hold.status != ACTIVE:
            raise HoldNotActiveError(f"the hold was {hold.status}", hold_status=hold.status)
        reservations.change(
            session.connection(),
            [reservations.Change(hold.wallet_id, reserved=-hold.amount, on_hold=-hold.amount)],
        )
        session.execute(_RELEASED, {"id": hold_id, "reason": "voided"})
        audit.record(session, "hold.voided", actor_id=service_id, target=hold_id)
        written = notifications.write(
            session,
            [released_notification(hold.user_id, hold_id, hold.amount, hold.reason, "voided")],
            webhooks=bool(wiring.config.webhook_url),
        )
        body = released_body(hold_id, hold.amount, "voided")
    notifications.dispatch(wiring, written)
    return Reply(200, body)


def captured_body(
    hold_id: uuid.UUID, held: Decimal, captured: Decimal, tx_id: uuid.UUID
) -> dict[str, Any]:
    """The answer to a capture, and to every repetition of it."""
    return {
        "hold_id": str(hold_id),
        "status": CAPTURED,
        "amount": to_wire(held),
        "captured_amount": to_wire(captured),
        "released_amount": to_wire(held - captured),
        "transaction_id": str(tx_id),
    }


def released_body(hold_id: uuid.UUID, held: Decimal, reason: str | None) -> dict[str, Any]:
    """The answer to a void, and to every repetition of it."""
    return {
        "hold_id": str(hold_id),
        "status": RELEASED,
        "amount": to_wire(held),
        "released_amount": to_wire(held),
        "release_reason": reason,
    }


def _lock(session: Session, service_id: uuid.UUID, hold_id: uuid.UUID) -> Row[Any]:
    """The hold, locked; only the service that placed it may decide it (any other gets the same
    404 as for an unknown id)."""
    hold = session.execute(_LOCK, {"id": hold_id}).first()
    if hold is None or hold.service_id != service_id:
        raise HoldNotFoundError()
    return hold


def released_notification(
    user_id: uuid.UUID, hold_id: uuid.UUID, amount: Decimal, reason: str, why: str
) -> NewNotification:
    return NewNotification(
        user_id,
        HOLD_RELEASED,
        None,
        amount,
        {"hold_id": str(hold_id), "reason": reason, "release_reason": why},
    )
