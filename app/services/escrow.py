"""Escrow holds: a deal reserves a buyer's tokens when it is accepted and moves them when it
completes (two-phase transfers, like TigerBeetle's pending/post/void or a card's manual capture).

A hold is a reservation on the submit side, exactly like a pending debit: placing one adds its
amount to the wallet's `reserved_total` (and `on_hold`) under the counters row lock every
submission takes, after checking available = balance − reserved covers it; it never touches
the wallet row settlement batches lock, so placing a hold never waits for settlement.

Capture, void and expiry decide a hold once: each locks the hold row (`FOR UPDATE`; the expiry
job skips locked rows) and acts only on a hold still `active`, so a capture racing a void or the
expiry has exactly one winner and the loser sees the outcome (409 `hold_not_active`, or the
same answer again for a repeated capture or void: both are idempotent). Then, under the counters
row lock:
- a capture hands the captured part of the reservation to a PENDING transaction it records (the
  wallet's next `seq`; a service fee to the platform, or a transfer to the recipient user) that
  the normal settlement pipeline settles, and takes the remainder off the reservation;
- a void or the expiry takes the whole amount off the reservation.
Locks are taken hold first, then one counters row (the expiry job: its holds, then their
counters rows, one job at a time under an advisory lock), so the deciders never deadlock.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.domain.errors import (
    CaptureExceedsHoldError,
    HoldNotActiveError,
    HoldNotFoundError,
    InsufficientBalanceError,
    RecipientNotFoundError,
    SelfTransferError,
    WalletInactiveError,
)
from app.domain.money import to_wire
from app.domain.notifications import HOLD_CAPTURED, HOLD_PLACED, HOLD_RELEASED, NewNotification
from app.domain.transactions import Kind, Status
from app.services import audit, idempotency, notifications
from app.services.idempotency import Reply
from app.services.submission import shard_of
from app.services.transfers import Idempotency, check_limit
from app.services.wallets import Provisioner, SystemWallets

ACTIVE, CAPTURED, RELEASED = "active", "captured", "released"
ADVISORY_NAMESPACE = 7303  # settlement shards use 7301, low-balance alerts 7302
EXPIRY_BATCH = 1000

_USER_WALLET = text("SELECT id FROM wallets WHERE user_id = :user_id AND kind = 'user'")
_RESERVE = text(
    """
    UPDATE wallet_counters
       SET reserved_total = reserved_total + :amount, on_hold = on_hold + :amount,
           last_used = now()
     WHERE wallet_id = :wallet_id
    RETURNING reserved_total
    """
)
_WALLET = text("SELECT balance, released_total, is_active FROM wallets WHERE id = :wallet_id")
_INSERT = text(
    """
    INSERT INTO escrow_holds (id, wallet_id, service_id, amount, reason, expires_at)
    VALUES (:id, :wallet_id, :service_id, :amount, :reason, :expires_at)
    """
)
_LOCK = text(
    """
    SELECT h.*, w.user_id FROM escrow_holds h JOIN wallets w ON w.id = h.wallet_id
     WHERE h.id = :id
       FOR UPDATE OF h
    """
)
# A capture: the next seq for its transaction; the captured part stays reserved (now for the
# transaction), the remainder is released.
_CAPTURE_COUNTERS = text(
    """
    UPDATE wallet_counters
       SET next_seq = next_seq + 1, reserved_total = reserved_total - (:held - :captured),
           on_hold = on_hold - :held, last_used = now()
     WHERE wallet_id = :wallet_id
    RETURNING next_seq
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
_RELEASE_COUNTERS = text(
    """
    UPDATE wallet_counters
       SET reserved_total = reserved_total - :amount, on_hold = on_hold - :amount
     WHERE wallet_id = :wallet_id
    """
)
_RELEASED = text(
    """
    UPDATE escrow_holds SET status = 'released', decided_at = now(), release_reason = :reason
     WHERE id = :id AND status = 'active'
    """
)
_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, 0)")
# Set-based expiry: due holds (skipping those a capture or void is deciding right now), their
# wallets' counters in one statement, and who to tell.
_EXPIRE = text(
    """
    WITH due AS (
        SELECT id FROM escrow_holds
         WHERE status = 'active' AND expires_at <= now()
         ORDER BY expires_at
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    ), released AS (
        UPDATE escrow_holds h
           SET status = 'released', decided_at = now(), release_reason = 'expired'
          FROM due
         WHERE h.id = due.id AND h.status = 'active'
        RETURNING h.id, h.wallet_id, h.amount, h.reason
    ), per_wallet AS (
        SELECT wallet_id, sum(amount) AS total FROM released GROUP BY wallet_id
    ), countered AS (
        UPDATE wallet_counters c
           SET reserved_total = c.reserved_total - p.total, on_hold = c.on_hold - p.total
          FROM per_wallet p
         WHERE c.wallet_id = p.wallet_id
    )
    SELECT r.id, r.amount, r.reason, w.user_id
      FROM released r JOIN wallets w ON w.id = r.wallet_id
    """
)
_ACTIVE_OF = text(
    """
    SELECT id, amount, reason, status, created_at, expires_at, captured_amount, transaction_id,
           release_reason
      FROM escrow_holds
     WHERE wallet_id = :wallet_id AND status = 'active'
     ORDER BY created_at DESC, id DESC
     LIMIT :limit
    """
)


@dataclass(frozen=True)
class HoldRequest:
    user_id: uuid.UUID
    amount: Decimal
    reason: str
    expires_in_seconds: int | None = None


def place(
    wiring: Wiring,
    provisioner: Provisioner,
    service_id: uuid.UUID,
    idem: Idempotency,
    request: HoldRequest,
) -> Reply:
    """Reserve `amount` of the user's available balance for a deal (the user's wallet is created
    if the wallet has never seen them, like a reward's). 201 with the hold; a repeated
    Idempotency-Key answers the same."""
    config = wiring.config
    check_limit(wiring, request.amount)
    provisioner.ensure_users([request.user_id])
    hold_id = uuid.uuid4()
    seconds = request.expires_in_seconds or config.hold_default_expiry_seconds
    expires_at = datetime.now(UTC) + timedelta(seconds=seconds)
    accepted = Reply(
        201,
        {
            "hold_id": str(hold_id),
            "status": ACTIVE,
            "amount": to_wire(request.amount),
            "expires_at": expires_at.isoformat(),
        },
    )
    with wiring.db.transaction() as session:
        replayed = idempotency.claim(
            session, service_id, idem.key, idem.digest, accepted, config.idempotency_ttl_hours
        )
        if replayed is not None:
            return replayed
        wallet_id = session.scalar(_USER_WALLET, {"user_id": request.user_id})
        if wallet_id is None:  # a reserved id: never provisioned, never named
            raise RecipientNotFoundError(f"no user {request.user_id}")
        reserved = session.scalar(_RESERVE, {"amount": request.amount, "wallet_id": wallet_id})
        wallet = session.execute(_WALLET, {"wallet_id": wallet_id}).one()
        if not wallet.is_active:
            raise WalletInactiveError()
        available = wallet.balance - (reserved - wallet.released_total)
        if available < 0:
            before = to_wire(available + request.amount)
            raise InsufficientBalanceError(
                f"available balance {before} is below {to_wire(request.amount)}",
                available_balance=before,
            )
        session.execute(
            _INSERT,
            {
                "id": hold_id,
                "wallet_id": wallet_id,
                "service_id": service_id,
                "amount": request.amount,
                "reason": request.reason,
                "expires_at": expires_at,
            },
        )
        audit.record(
            session,
            "hold.placed",
            actor_id=service_id,
            target=hold_id,
            user_id=request.user_id,
            amount=request.amount,
            reason=request.reason,
        )
        written = notifications.write(
            session,
            [
                NewNotification(
                    request.user_id,
                    HOLD_PLACED,
                    None,
                    -request.amount,
                    {
                        "hold_id": str(hold_id),
                        "reason": request.reason,
                        "expires_at": expires_at.isoformat(),
                    },
                )
            ],
            webhooks=bool(config.webhook_url),
        )
    notifications.dispatch(wiring, written)
    return accepted


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
            return Reply(202, captured_body(hold), replayed=True)
        _check_active(hold)
        captured = hold.amount if amount is None else amount
        if captured > hold.amount:
            raise CaptureExceedsHoldError(
                f"at most {to_wire(hold.amount)} is held", held=to_wire(hold.amount)
            )
        kind, credit = Kind.SERVICE_FEE, platform
        if recipient_id is not None:
            kind, credit = Kind.TRANSFER, session.scalar(_USER_WALLET, {"user_id": recipient_id})
            if credit is None:
                raise RecipientNotFoundError(f"no user {recipient_id}")
            if credit == hold.wallet_id:
                raise SelfTransferError("the hold's own wallet cannot receive its capture")
        seq = session.scalar(
            _CAPTURE_COUNTERS,
            {"held": hold.amount, "captured": captured, "wallet_id": hold.wallet_id},
        )
        tx_id = uuid.uuid4()
        shard = shard_of(hold.wallet_id, config.settlement_shards)
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
                    released=hold.amount - captured,
                    transaction_id=tx_id,
                ),
            ],
        )
        body = {
            "hold_id": str(hold_id),
            "status": CAPTURED,
            "amount": to_wire(hold.amount),
            "captured_amount": to_wire(captured),
            "released_amount": to_wire(hold.amount - captured),
            "transaction_id": str(tx_id),
        }
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
                        "released_amount": hold.amount - captured,
                        "status": Status.PENDING.value,
                    },
                )
            ],
            webhooks=bool(config.webhook_url),
        )
    wiring.queue.kick_settlement(shard)
    notifications.dispatch(wiring, written)
    return Reply(202, body)


def void(wiring: Wiring, service_id: uuid.UUID, hold_id: uuid.UUID) -> Reply:
    """Release the whole hold. A repeated void answers the release that happened."""
    with wiring.db.transaction() as session:
        hold = _lock(session, service_id, hold_id)
        if hold.status == RELEASED:
            return Reply(200, released_body(hold), replayed=True)
        if hold.status != ACTIVE:
            raise HoldNotActiveError(f"the hold was {hold.status}", hold_status=hold.status)
        session.execute(_RELEASE_COUNTERS, {"amount": hold.amount, "wallet_id": hold.wallet_id})
        session.execute(_RELEASED, {"id": hold_id, "reason": "voided"})
        audit.record(session, "hold.voided", actor_id=service_id, target=hold_id)
        written = notifications.write(
            session,
            [_released_notification(hold.user_id, hold_id, hold.amount, hold.reason, "voided")],
            webhooks=bool(wiring.config.webhook_url),
        )
        body = {
            "hold_id": str(hold_id),
            "status": RELEASED,
            "amount": to_wire(hold.amount),
            "released_amount": to_wire(hold.amount),
            "release_reason": "voided",
        }
    notifications.dispatch(wiring, written)
    return Reply(200, body)


def expire(wiring: Wiring, *, batch_size: int = EXPIRY_BATCH) -> int:
    """The beat job: release every hold past its expiry, in batches; returns how many. One run
    at a time (advisory lock); holds a capture or void is deciding right now are skipped (that
    decision wins)."""
    released = 0
    while True:
        with wiring.db.transaction() as session:
            if not session.scalar(_TRY_LOCK, {"ns": ADVISORY_NAMESPACE}):
                return released
            rows = session.execute(_EXPIRE, {"limit": batch_size}).all()
            audit.record_many(
                session,
                [audit.entry("hold.expired", actor_id=None, target=r.id) for r in rows],
            )
            written = notifications.write(
                session,
                [
                    _released_notification(r.user_id, r.id, r.amount, r.reason, "expired")
                    for r in rows
                ],
                webhooks=bool(wiring.config.webhook_url),
            )
        notifications.dispatch(wiring, written)
        released += len(rows)
        if len(rows) < batch_size:
            return released


def active_of(session: Session, wallet_id: uuid.UUID, limit: int = 100) -> list[dict[str, Any]]:
    """The wallet's active holds, newest first (a range scan of a partial index)."""
    return [
        {
            "hold_id": r.id,
            "amount": r.amount,
            "reason": r.reason,
            "status": r.status,
            "created_at": r.created_at,
            "expires_at": r.expires_at,
        }
        for r in session.execute(_ACTIVE_OF, {"wallet_id": wallet_id, "limit": limit})
    ]


def captured_body(hold: Row[Any]) -> dict[str, Any]:
    return {
        "hold_id": str(hold.id),
        "status": CAPTURED,
        "amount": to_wire(hold.amount),
        "captured_amount": to_wire(hold.captured_amount),
        "released_amount": to_wire(hold.amount - hold.captured_amount),
        "transaction_id": str(hold.transaction_id),
    }


def released_body(hold: Row[Any]) -> dict[str, Any]:
    return {
        "hold_id": str(hold.id),
        "status": RELEASED,
        "amount": to_wire(hold.amount),
        "released_amount": to_wire(hold.amount),
        "release_reason": hold.release_reason,
    }


def _lock(session: Session, service_id: uuid.UUID, hold_id: uuid.UUID) -> Row[Any]:
    """The hold, locked; only the service that placed it may decide it (any other gets the same
    404 as for an unknown id)."""
    hold = session.execute(_LOCK, {"id": hold_id}).first()
    if hold is None or hold.service_id != service_id:
        raise HoldNotFoundError()
    return hold


def _check_active(hold: Row[Any]) -> None:
    if hold.status != ACTIVE:
        raise HoldNotActiveError(f"the hold was {hold.status}", hold_status=hold.status)
    if hold.expires_at <= datetime.now(UTC):  # the expiry job will release it
        raise HoldNotActiveError("the hold has expired", hold_status="expired")


def _released_notification(
    user_id: uuid.UUID, hold_id: uuid.UUID, amount: Decimal, reason: str, why: str
) -> NewNotification:
    return NewNotification(
        user_id,
        HOLD_RELEASED,
        None,
        amount,
        {"hold_id": str(hold_id), "reason": reason, "release_reason": why},
    )
