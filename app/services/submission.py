"""Recording money movements as PENDING transactions (the API side of the pipeline).

Every kind goes through `record`: it reserves the amount on the debit wallet (available =
balance − reserved must cover it), hands out the wallet's next `seq`, and inserts the rows. The
caller's unit of work commits; settlement is kicked only after that commit.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.domain.errors import (
    InsufficientBalanceError,
    WalletInactiveError,
    WalletNotFoundError,
)
from app.domain.money import to_wire
from app.domain.transactions import Kind, Status
from app.models import LedgerEntry, Transaction, Wallet
from app.services import audit, idempotency
from app.services.idempotency import Reply

_RESERVE = text(
    """
    UPDATE wallets
       SET next_seq = next_seq + :n, reserved = reserved + :total, last_used = now()
     WHERE id = :wallet_id AND is_active
       AND (kind = 'external' OR balance - reserved >= :total)
    RETURNING next_seq
    """
)


@dataclass(frozen=True)
class Line:
    credit_wallet_id: uuid.UUID
    amount: Decimal
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Chain-bound transactions only (deposits): kept out of ledger batches until paid.
    stage: str | None = None
    reference: str | None = None
    expires_at: datetime | None = None


@dataclass(frozen=True)
class Accepted:
    """What an action recorded: the reply to give and the shards to kick after commit."""

    reply: Reply
    transaction_ids: list[uuid.UUID]
    shards: set[int]


def shard_of(wallet_id: uuid.UUID, shards: int) -> int:
    return wallet_id.int % shards


def record(
    session: Session,
    *,
    kind: Kind,
    debit_wallet_id: uuid.UUID,
    lines: list[Line],
    initiator_id: uuid.UUID | None,
    shards: int,
    parent_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Reserve and record one PENDING transaction per line, all debiting one wallet, atomically."""
    total = sum((line.amount for line in lines), Decimal(0))
    last_seq = session.scalar(
        _RESERVE, {"n": len(lines), "total": total, "wallet_id": debit_wallet_id}
    )
    if last_seq is None:
        _explain_refusal(session, debit_wallet_id, total)
    first_seq = int(last_seq) - len(lines) + 1
    shard = shard_of(debit_wallet_id, shards)
    ids = [uuid.uuid4() for _ in lines]
    audit.record_many(
        session,
        [
            audit.entry(
                f"{kind.value}.submitted",
                actor_id=initiator_id,
                target=tx_id,
                amount=to_wire(line.amount),
                debit_wallet=debit_wallet_id,
                credit_wallet=line.credit_wallet_id,
            )
            for tx_id, line in zip(ids, lines, strict=True)
        ],
    )
    # clock_timestamp(), taken after the wallet lock: a wallet's created_at order matches its seq.
    session.execute(
        insert(Transaction).values(created_at=func.clock_timestamp()),
        [
            dict(
                id=tx_id,
                kind=kind.value,
                debit_wallet_id=debit_wallet_id,
                credit_wallet_id=line.credit_wallet_id,
                amount=line.amount,
                seq=first_seq + i,
                shard=shard,
                initiator_id=initiator_id,
                note=line.note,
                parent_id=parent_id,
                details=line.details,
                stage=line.stage,
                reference=line.reference,
                expires_at=line.expires_at,
            )
            for i, (tx_id, line) in enumerate(zip(ids, lines, strict=True))
        ],
    )
    return ids


def _explain_refusal(session: Session, wallet_id: uuid.UUID, amount: Decimal) -> None:
    wallet = session.get(Wallet, wallet_id)
    if wallet is None:
        raise WalletNotFoundError()
    if not wallet.is_active:
        raise WalletInactiveError()
    raise InsufficientBalanceError(
        f"available balance {to_wire(wallet.balance - wallet.reserved)} is below {to_wire(amount)}",
        available_balance=to_wire(wallet.balance - wallet.reserved),
    )


def wallet_of_user(session: Session, user_id: uuid.UUID) -> uuid.UUID | None:
    return session.scalar(select(Wallet.id).where(Wallet.user_id == user_id))


def submit(
    wiring: Wiring,
    *,
    owner_id: uuid.UUID,
    key: str,
    digest: str,
    action: Callable[[Session], Accepted],
    wait_seconds: float = 0,
    view_wallet_id: uuid.UUID | None = None,
) -> Reply:
    """Run `action` once per idempotency key: commit, then kick settlement; optionally wait for
    the (single) transaction to settle and answer its final state."""
    config = wiring.config
    ttl = timedelta(hours=config.idempotency_ttl_hours)
    hold = timedelta(seconds=wait_seconds + 5) if wait_seconds else None
    with wiring.db.transaction() as session:
        claimed = idempotency.claim(session, owner_id, key, digest, ttl, hold)
        if isinstance(claimed, Reply):
            return claimed
        accepted = action(session)
        idempotency.store(session, claimed, accepted.reply, in_flight=bool(wait_seconds))
    for shard in accepted.shards:
        wiring.queue.kick_settlement(shard)
    if not wait_seconds:
        return accepted.reply
    reply = accepted.reply
    if len(accepted.transaction_ids) == 1 and view_wallet_id is not None:
        reply = wait_for_settlement(
            wiring, accepted.transaction_ids[0], view_wallet_id, wait_seconds, reply
        )
    with wiring.db.transaction() as session:
        idempotency.store(session, claimed, reply)
    return reply


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
            body = dict(pending.body)
            body.update(
                success=row.status == Status.COMPLETED.value,
                status=row.status,
                balance_after=to_wire(row.balance_after) if row.balance_after is not None else None,
                failure_reason=row.failure_reason,
            )
            return Reply(200, body)
        if time.monotonic() + delay > deadline:
            return pending
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


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


def refunded_so_far(session: Session, parent_id: uuid.UUID) -> Decimal:
    """Total of refunds of `parent_id` that have not failed (pending ones count)."""
    total = session.scalar(
        select(func.coalesce(func.sum(Transaction.amount), 0)).where(
            Transaction.parent_id == parent_id,
            Transaction.kind == Kind.REFUND.value,
            Transaction.status != Status.FAILED.value,
        )
    )
    return Decimal(total or 0)


def advance_staged(session: Session, tx_id: uuid.UUID, stage: str, /, **values: Any) -> Any:
    """Compare-and-set for chain-staged work: move a PENDING transaction that is still in `stage`
    (a redelivered task finds it moved on and changes nothing). Returns the updated row's
    (debit_wallet_id, credit_wallet_id, amount), or None when it had already moved."""
    return session.execute(
        update(Transaction)
        .where(
            Transaction.id == tx_id,
            Transaction.status == Status.PENDING.value,
            Transaction.stage == stage,
        )
        .values(updated_at=func.now(), **values)
        .returning(Transaction.debit_wallet_id, Transaction.credit_wallet_id, Transaction.amount)
    ).first()
