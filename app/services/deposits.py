"""Deposits through Solana Pay transfer requests.

A deposit is a PENDING transaction (chain account → user) with a unique `reference` key, staged
`awaiting_payment` so ledger batches leave it alone. The watcher (beat, and on demand when the
user looks at it) finds the payment by reference, validates it and credits it only at
`finalized`: the stage is cleared, `tx_hash` set (unique: a chain transaction is never credited
twice), and the ordinary settlement completes it. Underpaid or wrong-mint payments are not
credited; why is recorded in `details.rejected_payments`. Unpaid deposits expire → FAILED
`expired`.

Late payments (a valid payment that lands after expiry) are not lost: for
`late_deposit_grace_hours` the watcher keeps looking at expired deposits' references and credits
such a payment as a new deposit transaction (its `parent_id` is the expired one).
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any

from solders.keypair import Keypair
from sqlalchemy import func, or_, select, text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.chain.rpc import ChainError
from app.chain.solana import ChainClient
from app.chain.solana_pay import PaymentCheck, payment_url, validate_payment
from app.db import after_commit
from app.domain.errors import TooManyOpenDepositsError
from app.domain.money import to_wire
from app.domain.settlement import PendingTx, fail_unsettled
from app.domain.transactions import FailureReason, Kind, Stage, Status
from app.models import Transaction
from app.services import (
    audit,
    batch_writes,
    chain_accounts,
    history,
    notifications,
    reservations,
)
from app.services.recording import Line, Submission, record, shard_of
from app.services.staging import advance_staged
from app.services.transfers import Caller, check_limit
from app.services.wallets import SystemWallets

log = logging.getLogger(__name__)

# A deposit request still waiting for its payment, locked against a payment credited meanwhile.
_AWAITING_PAYMENT = text(
    """
    SELECT id, debit_wallet_id, credit_wallet_id, amount, seq, created_at, kind
      FROM transactions
     WHERE id = :id AND status = 'pending' AND stage = 'awaiting_payment'
       FOR NO KEY UPDATE
    """
)


@dataclass(frozen=True)
class DepositRequest:
    transaction_id: uuid.UUID
    amount: Decimal
    reference: str
    recipient: str
    mint: str
    payment_url: str
    expires_at: datetime


class Check(enum.StrEnum):
    """What one `check` call found for a deposit."""

    NOOP = "noop"
    WAITING = "waiting"
    DUPLICATE = "duplicate"
    CREDITED = "credited"
    LATE_CREDITED = "late_credited"
    EXPIRED = "expired"


def create(
    wiring: Wiring, system: SystemWallets, caller: Caller, amount: Decimal
) -> DepositRequest:
    check_limit(wiring, amount)
    config = wiring.config
    recipient = chain_accounts.treasury_address(config)
    mint = str(chain_accounts.mint(config))
    reference = str(Keypair().pubkey())
    expires_at = datetime.now(UTC) + timedelta(minutes=config.deposit_ttl_minutes)
    submission = Submission(
        Kind.DEPOSIT,
        [
            Line(
                caller.wallet_id,
                amount,
                stage=Stage.AWAITING_PAYMENT,
                reference=reference,
                expires_at=expires_at,
            )
        ],
        caller.user_id,
        debit_wallet_id=system.wallet_id("chain"),
    )
    with wiring.db.transaction() as session:
        _ensure_below_open_cap(session, caller.wallet_id, config.deposit_max_open_per_user)
        [tx_id] = record(session, submission, config.settlement_shards).transaction_ids
    return DepositRequest(
        tx_id,
        amount,
        reference,
        recipient,
        mint,
        payment_url(recipient, amount, mint, reference, str(tx_id)),
        expires_at,
    )


def _ensure_below_open_cap(session: Session, wallet_id: uuid.UUID, cap: int) -> None:
    """Every open deposit is watched on the chain until it expires, so one user may keep only
    `cap` of them (`too_many_open_deposits`). Requests of one wallet take turns (a transaction-
    scoped advisory lock), so racing requests cannot both take the last place."""
    session.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(f"deposits:{wallet_id}", 0)))
    )
    open_now = session.scalar(
        select(func.count())
        .select_from(Transaction)
        .where(
            Transaction.credit_wallet_id == wallet_id,
            Transaction.kind == Kind.DEPOSIT.value,
            Transaction.stage == Stage.AWAITING_PAYMENT,
            Transaction.expires_at > func.now(),
        )
    )
    if (open_now or 0) >= cap:
        raise TooManyOpenDepositsError(
            f"at most {cap} deposit requests may await payment at once: pay one or let it expire",
            limit=cap,
        )


def _find_payment(
    wiring: Wiring, chain: ChainClient, reference: str, memo: str, requested: Decimal
) -> tuple[str | None, PaymentCheck | None, list[dict[str, Any]]]:
    """Oldest first, the first valid finalized payment carrying `reference`, plus the rejected
    ones (signature, reason, amount)."""
    config = wiring.config
    treasury, mint = chain_accounts.treasury_address(config), config.token_mint
    rejected: list[dict[str, Any]] = []
    for info in reversed(chain.signatures_for_address(reference)):
        signature = info["signature"]
        check = validate_payment(
            chain.transaction(signature),
            treasury=treasury,
            mint=mint,
            reference=reference,
            memo=memo,
            requested=requested,
        )
        if check.ok:
            return signature, check, rejected
        rejected.append(
            {"signature": signature, "reason": check.reason, "amount": to_wire(check.amount)}
        )
    return None, None, rejected


def check(
    wiring: Wiring, system: SystemWallets, tx_id: uuid.UUID, chain: ChainClient | None = None
) -> Check:
    """Look for this deposit's payment; credit, expire, or keep waiting. Idempotent."""
    chain = chain or wiring.chain
    with wiring.db.transaction() as session:
        tx = session.get(Transaction, tx_id)
        if tx is None or tx.kind != Kind.DEPOSIT.value or tx.reference is None:
            return Check.NOOP
        state = (tx.status, tx.stage, tx.failure_reason)
        reference, amount, expires_at = tx.reference, tx.amount, tx.expires_at
        credit_wallet = tx.credit_wallet_id
    if state == (Status.PENDING.value, Stage.AWAITING_PAYMENT, None):
        signature, found, rejected = _find_payment(wiring, chain, reference, str(tx_id), amount)
        if signature and found:
            return _credit(wiring, system, tx_id, signature, found.amount, amount)
        _note_rejections(wiring, tx_id, rejected)
        if expires_at is not None and datetime.now(UTC) > expires_at:
            return _expire(wiring, tx_id)
        return Check.WAITING
    if state == (Status.FAILED.value, None, FailureReason.EXPIRED.value):
        signature, found, _ = _find_payment(wiring, chain, reference, str(tx_id), amount)
        if signature and found:
            return _credit_late(wiring, system, tx_id, credit_wallet, signature, found.amount)
    return Check.NOOP


def _credit(
    wiring: Wiring,
    system: SystemWallets,
    tx_id: uuid.UUID,
    signature: str,
    paid: Decimal,
    requested: Decimal,
) -> Check:
    chain_wallet = system.wallet_id("chain")
    try:
        with wiring.db.transaction() as session:
            credited = advance_staged(
                session,
                tx_id,
                Stage.AWAITING_PAYMENT,
                stage=None,
                tx_hash=signature,
                amount=paid,
                details=Transaction.details.op("||")(
                    {"requested": to_wire(requested), "paid": to_wire(paid)}
                ),
            )
            if credited:  # an overpayment is credited whole: keep the reservation exact
                reservations.change(
                    session.connection(),
                    [reservations.Change(chain_wallet, reserved=paid - requested)],
                )
                audit.record(
                    session,
                    "deposit.paid",
                    actor_id=None,
                    target=tx_id,
                    tx_hash=signature,
                    paid=paid,
                )
                shard = shard_of(chain_wallet, wiring.config.settlement_shards)
                after_commit(session, lambda: wiring.queue.kick_settlement(shard))
    except IntegrityError:
        log.error("payment %s for deposit %s was already credited elsewhere", signature, tx_id)
        return Check.DUPLICATE
    if credited:
        return Check.CREDITED
    return Check.NOOP


def _credit_late(
    wiring: Wiring,
    system: SystemWallets,
    expired_id: uuid.UUID,
    credit_wallet: uuid.UUID,
    signature: str,
    paid: Decimal,
) -> Check:
    chain_wallet = system.wallet_id("chain")
    shards = wiring.config.settlement_shards
    with wiring.db.transaction() as session:
        if session.scalar(select(Transaction.id).where(Transaction.tx_hash == signature)):
            return Check.NOOP  # already credited
        [late_id] = record(
            session,
            Submission(
                Kind.DEPOSIT,
                [
                    Line(
                        credit_wallet,
                        paid,
                        "late payment of an expired deposit",
                        {"late_payment_of": str(expired_id)},
                    )
                ],
                None,
                debit_wallet_id=chain_wallet,
                parent_id=expired_id,
            ),
            shards,
        ).transaction_ids
        session.execute(
            update(Transaction).where(Transaction.id == late_id).values(tx_hash=signature)
        )
        after_commit(session, lambda: wiring.queue.kick_settlement(shard_of(chain_wallet, shards)))
    return Check.LATE_CREDITED


def _expire(wiring: Wiring, tx_id: uuid.UUID) -> Check:
    """A deposit request never paid fails `expired`; the chain wallet's reservation for it is
    released through the settlement batches' writer, which also tells the user."""
    try:
        with wiring.db.transaction() as session:
            conn = session.connection()
            row = conn.execute(_AWAITING_PAYMENT, {"id": tx_id}).first()
            if row is None:
                return Check.NOOP
            _, told = batch_writes.write_decision(
                conn,
                wiring.config,
                PendingTx(*row),
                partial(fail_unsettled, reason=FailureReason.EXPIRED, notify_outcomes=False),
                from_state=(Status.PENDING, Stage.AWAITING_PAYMENT),
            )
            audit.record(session, "deposit.expired", actor_id=None, target=tx_id)
    except batch_writes.ConcurrentChangeError as exc:  # rolled back; the next poll looks again
        log.warning("deposit %s not expired now: %s", tx_id, exc)
        return Check.NOOP
    notifications.dispatch(wiring, told)
    return Check.EXPIRED


def _note_rejections(wiring: Wiring, tx_id: uuid.UUID, rejected: list[dict[str, Any]]) -> None:
    if not rejected:
        return
    with wiring.db.transaction() as session:
        session.execute(
            update(Transaction)
            .where(Transaction.id == tx_id)
            .values(details=Transaction.details.op("||")({"rejected_payments": rejected}))
        )


def open_deposits(wiring: Wiring, *, late: bool = False, limit: int = 1000) -> list[uuid.UUID]:
    """Up to `limit` deposits awaiting payment, or (late=True) expired ones still inside the
    grace period: the least recently checked first, each marked checked as it is handed out, so
    successive polls go round all of them however many there are (round-robin, not the oldest
    `limit` again and again). Rows another poll is marking are skipped."""
    query = select(Transaction.id).where(Transaction.kind == Kind.DEPOSIT.value)
    if late:
        grace = datetime.now(UTC) - timedelta(hours=wiring.config.late_deposit_grace_hours)
        query = query.where(
            Transaction.status == Status.FAILED.value,
            Transaction.failure_reason == FailureReason.EXPIRED.value,
            Transaction.expires_at > grace,
        )
    else:
        query = query.where(Transaction.stage == Stage.AWAITING_PAYMENT)
    due = (
        query.order_by(Transaction.checked_at.asc().nulls_first(), Transaction.created_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    with wiring.db.transaction() as session:
        return list(
            session.scalars(
                update(Transaction)
                .where(Transaction.id.in_(due))
                .values(checked_at=func.now())
                .returning(Transaction.id)
            )
        )


def _claim_view_check(wiring: Wiring, tx_id: uuid.UUID) -> bool:
    """True for at most one view per DEPOSIT_VIEW_CHECK_SECONDS per deposit (compare-and-set on
    `checked_at`, which the watcher's polls move too)."""
    interval = timedelta(seconds=wiring.config.deposit_view_check_seconds)
    with wiring.db.transaction() as session:
        claimed = session.scalar(
            update(Transaction)
            .where(
                Transaction.id == tx_id,
                Transaction.stage == Stage.AWAITING_PAYMENT,
                or_(
                    Transaction.checked_at.is_(None),
                    Transaction.checked_at < func.now() - interval,
                ),
            )
            .values(checked_at=func.now())
            .returning(Transaction.id)
        )
    return claimed is not None


def view_own(
    wiring: Wiring, system: SystemWallets, wallet_id: uuid.UUID, tx_id: uuid.UUID
) -> history.TransactionView:
    """One of this wallet's transactions. A deposit of its own still awaiting payment is first
    checked against the chain on the spot — one quick try, at most once per
    DEPOSIT_VIEW_CHECK_SECONDS per deposit; otherwise (and when the chain is unreachable) the
    caller sees what is known, and the watcher keeps looking."""
    found = history.get_transaction(wiring.db, wallet_id, tx_id)
    if found.stage != Stage.AWAITING_PAYMENT or found.direction != "credit":
        return found
    if not _claim_view_check(wiring, tx_id):
        return found
    try:
        check(wiring, system, tx_id, wiring.chain_quick)
    except ChainError:
        return found
    return history.get_transaction(wiring.db, wallet_id, tx_id)
