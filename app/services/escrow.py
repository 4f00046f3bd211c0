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

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.domain.errors import (
    InsufficientBalanceError,
    RecipientNotFoundError,
    WalletInactiveError,
)
from app.domain.escrow import ACTIVE
from app.domain.money import to_wire
from app.domain.notifications import HOLD_PLACED, NewNotification
from app.services import audit, idempotency, notifications, reservations
from app.services.idempotency import Reply
from app.services.transfers import Idempotency, check_limit
from app.services.wallets import Provisioner

USER_WALLET = text("SELECT id FROM wallets WHERE user_id = :user_id AND kind = 'user'")
_WALLET = text("SELECT balance, released_total, is_active FROM wallets WHERE id = :wallet_id")
_INSERT = text(
    """
    INSERT INTO escrow_holds (id, wallet_id, service_id, amount, reason, expires_at)
    VALUES (:id, :wallet_id, :service_id, :amount, :reason, :expires_at)
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
        wallet_id = session.scalar(USER_WALLET, {"user_id": request.user_id})
        if wallet_id is None:  # a reserved id: never provisioned, never named
            raise RecipientNotFoundError(f"no user {request.user_id}")
        amount = request.amount
        counters = reservations.change(
            session.connection(),
            [reservations.Change(wallet_id, reserved=amount, on_hold=amount, used=True)],
        )
        reserved = counters[wallet_id].reserved_total
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
