"""Step-up confirmation: a high-value transfer or withdrawal waits for the user's connected
external wallet to sign it (migration 0015, `app.domain.step_up`).

Accepting stays one round trip for everything below the step-up amount: `accept_transactions`
decides (it reads the user's own step-up amount and connected address from the wallet row it
already reads) and refuses a movement that needs confirmation with `step_up_required`, naming the
connected address. Only then is it recorded again — a second round trip, for high-value
movements alone — PENDING in stage `awaiting_confirmation` (reserved, not settled, no `seq`) with
the message the address must sign.

Confirming locks the transaction row, verifies the signature (PyNaCl) against the address the
message names, which must still be the connected one, and moves it on (compare-and-set on the
stage) with the wallet's next `seq`, so it settles after every debit accepted before the
confirmation. A wrong signature is refused (400) and audited. The expiry job fails what was not
confirmed in time (`unconfirmed`) and releases the reservation; a confirmation racing it locks
the same row, so exactly one of them happens.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.chain import siws
from app.config import Config
from app.db import after_commit
from app.domain.errors import (
    ConfirmationExpiredError,
    InvalidSignatureError,
    InvalidTransferError,
    NotAwaitingConfirmationError,
    StepUpUnavailableError,
    TransactionNotFoundError,
)
from app.domain.money import to_wire
from app.domain.notifications import for_outcome
from app.domain.step_up import (
    Confirmation,
    effective_amount,
    new_confirmation,
)
from app.domain.transactions import FailureReason, Stage, Status
from app.services import audit, notifications, reservations
from app.services.idempotency import Reply
from app.services.recording import RELEASE_JOBS_LOCK, StepUpRequiredError, Submission
from app.services.submission import submit

EXPIRY_BATCH = 1000
_ATTEMPTS = 3  # the connected address changing between the two round trips, again and again

_LOAD = text(
    """
    SELECT t.id, t.kind, t.status, t.stage, t.details, t.expires_at, t.shard,
           t.debit_wallet_id, w.address
      FROM transactions t JOIN wallets w ON w.id = t.debit_wallet_id
     WHERE t.id = :id AND t.debit_wallet_id = :wallet_id
       FOR UPDATE OF t
    """
)
_CONFIRMED = text(
    """
    UPDATE transactions SET stage = NULL, seq = :seq, expires_at = NULL, updated_at = now()
     WHERE id = :id AND status = 'pending' AND stage = 'awaiting_confirmation'
    """
)
# Fail what was not confirmed in time (skipping rows a confirmation holds right now); their
# amounts then leave the wallets' reservations (`reservations.change`).
_EXPIRE = text(
    """
    WITH due AS (
        SELECT id FROM transactions
         WHERE status = 'pending' AND stage = 'awaiting_confirmation' AND expires_at <= now()
         ORDER BY expires_at
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    ), failed AS (
        UPDATE transactions t
           SET status = 'failed', failure_reason = :reason, stage = NULL, updated_at = now()
          FROM due
         WHERE t.id = due.id AND t.status = 'pending' AND t.stage = 'awaiting_confirmation'
        RETURNING t.id, t.kind, t.debit_wallet_id, t.amount
    )
    SELECT f.id, f.kind, f.debit_wallet_id, f.amount, w.user_id, w.balance
      FROM failed f JOIN wallets w ON w.id = f.debit_wallet_id
    """
)


def submit_stepped(
    wiring: Wiring,
    submission: Submission,
    *,
    owner_id: uuid.UUID,
    key: str,
    digest: str,
    destination: Callable[[str], str],
    wait_seconds: float = 0,
    view_wallet_id: uuid.UUID | None = None,
) -> Reply:
    """`submit` a transfer or withdrawal (one line carrying the platform's `step_up`); when the
    database says it needs confirmation, record it awaiting the connected address's signature
    and answer 202 with the message to sign. `destination(address)` names where the money goes
    (a withdrawal goes to the signing address itself)."""
    try:
        return submit(
            wiring,
            submission,
            owner_id=owner_id,
            key=key,
            digest=digest,
            wait_seconds=wait_seconds,
            view_wallet_id=view_wallet_id,
        )
    except StepUpRequiredError as required:
        signer = required.address
    [line] = submission.lines
    ttl = timedelta(seconds=wiring.config.step_up_confirmation_seconds)
    for _ in range(_ATTEMPTS):
        tx_id = uuid.uuid4()
        confirmation = new_confirmation(
            wiring.config.domain,
            tx_id,
            submission.kind.value,
            line.amount,
            destination(signer),
            signer,
            datetime.now(UTC) + ttl,
        )
        awaiting = replace(
            submission,
            ids=(tx_id,),
            lines=[
                replace(
                    line,
                    stage=Stage.AWAITING_CONFIRMATION,
                    expires_at=confirmation.expires_at,
                    step_up=None,
                    details={**line.details, "confirmation": confirmation.stored()},
                )
            ],
        )
        try:
            return submit(
                wiring,
                awaiting,
                owner_id=owner_id,
                key=key,
                digest=digest,
                reply=_replying(confirmation),
            )
        except StepUpRequiredError as again:
            signer = again.address
    raise StepUpUnavailableError("the connected wallet keeps changing: try again")


def _replying(confirmation: Confirmation) -> Callable[[list[uuid.UUID]], Reply]:
    return lambda _ids: confirmation_reply(confirmation)


def confirmation_reply(confirmation: Confirmation) -> Reply:
    return Reply(
        202,
        {
            "success": True,
            "transaction_id": str(confirmation.transaction_id),
            "status": Status.PENDING.value,
            "stage": Stage.AWAITING_CONFIRMATION,
            "balance_after": None,
            "confirmation": {
                "message": confirmation.message,
                "expires_at": confirmation.expires_at.isoformat(),
            },
        },
    )


def confirm(
    wiring: Wiring,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    tx_id: uuid.UUID,
    signature: str | None,
) -> Reply:
    """Verify the connected wallet's signature of the transaction's message and let it settle."""
    try:
        return _confirm(wiring, wallet_id, tx_id, signature)
    except InvalidSignatureError as refused:
        audit.record_alone(
            wiring.db,
            "transaction.confirmation_refused",
            actor_id=user_id,
            target=tx_id,
            reason=refused.detail,
        )
        raise


def _confirm(
    wiring: Wiring, wallet_id: uuid.UUID, tx_id: uuid.UUID, signature: str | None
) -> Reply:
    with wiring.db.transaction() as session:
        tx = session.execute(_LOAD, {"id": tx_id, "wallet_id": wallet_id}).first()
        if tx is None:
            raise TransactionNotFoundError()
        if tx.status != Status.PENDING.value or tx.stage != Stage.AWAITING_CONFIRMATION:
            raise NotAwaitingConfirmationError(
                f"the transaction is {tx.status}", transaction_status=tx.status
            )
        if tx.expires_at <= datetime.now(UTC):
            raise ConfirmationExpiredError()
        stored: dict[str, Any] = tx.details["confirmation"]
        if tx.address != stored["address"]:
            raise StepUpUnavailableError(
                "the wallet that must confirm this transaction is no longer connected"
            )
        if not signature:
            raise InvalidSignatureError("signature is required")
        siws.verify(stored["address"], stored["message"], siws.decode_signature(signature))
        seq = reservations.change(
            session.connection(), [reservations.Change(wallet_id, sequenced=1, used=True)]
        )[wallet_id].next_seq
        session.execute(_CONFIRMED, {"id": tx_id, "seq": seq})
        audit.record(session, f"{tx.kind}.confirmed", actor_id=None, target=tx_id)
        after_commit(session, lambda: wiring.queue.kick_settlement(tx.shard))
    return Reply(
        202,
        {
            "success": True,
            "transaction_id": str(tx_id),
            "status": Status.PENDING.value,
            "balance_after": None,
        },
    )


def expire(wiring: Wiring, *, batch_size: int = EXPIRY_BATCH) -> int:
    """The beat job: fail every transaction still unconfirmed after its window (`unconfirmed`),
    releasing its reservation and telling its sender; returns how many."""
    failed = 0
    while True:
        with wiring.db.transaction() as session:
            if not session.scalar(RELEASE_JOBS_LOCK):  # one such job at a time
                return failed
            rows = session.execute(
                _EXPIRE, {"limit": batch_size, "reason": FailureReason.UNCONFIRMED.value}
            ).all()
            reservations.change(
                session.connection(),
                [reservations.Change(r.debit_wallet_id, reserved=-r.amount) for r in rows],
            )
            audit.record_many(
                session,
                [
                    audit.entry(
                        f"{r.kind}.failed", actor_id=None, target=r.id, reason="unconfirmed"
                    )
                    for r in rows
                ],
            )
            told = [
                n
                for r in rows
                for n in for_outcome(
                    kind=r.kind,
                    status=Status.FAILED.value,
                    transaction_id=r.id,
                    amount=r.amount,
                    debit_user=r.user_id,
                    credit_user=None,
                    reason=FailureReason.UNCONFIRMED.value,
                    debit_balance=r.balance,
                )
            ]
            written = notifications.write(session, told, webhooks=bool(wiring.config.webhook_url))
        notifications.dispatch(wiring, written)
        failed += len(rows)
        if len(rows) < batch_size:
            return failed


@dataclass(frozen=True)
class StepUpSettings:
    step_up_amount: Decimal | None
    effective_step_up_amount: Decimal | None


_OWN = text("SELECT step_up_amount FROM wallets WHERE user_id = :user_id AND kind = 'user'")
_SET_OWN = text(
    "UPDATE wallets SET step_up_amount = :amount WHERE user_id = :user_id AND kind = 'user'"
    " RETURNING step_up_amount"
)


def settings_of(session: Session, config: Config, user_id: uuid.UUID) -> StepUpSettings:
    own = session.scalar(_OWN, {"user_id": user_id})
    return StepUpSettings(own, effective_amount(config.step_up_amount, own))


def set_own_amount(
    session: Session, config: Config, user_id: uuid.UUID, amount: Decimal | None
) -> StepUpSettings:
    """The user's own step-up amount (None: the platform's). Only lower than the platform's:
    a user may ask for more confirmations, never fewer (422 otherwise)."""
    platform = config.step_up_amount
    if amount is not None and platform > 0 and amount > platform:
        raise InvalidTransferError(
            f"step_up_amount must be at most {to_wire(platform)} (STEP_UP_AMOUNT)",
            maximum=to_wire(platform),
        )
    session.execute(_SET_OWN, {"user_id": user_id, "amount": amount})
    return StepUpSettings(amount, effective_amount(platform, amount))
