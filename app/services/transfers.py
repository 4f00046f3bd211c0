"""Use cases that move money: user transfers, service fees, rewards, refunds, issuance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.domain.errors import (
    AmountTooLargeError,
    NotRefundableError,
    RecipientNotFoundError,
    RefundLimitExceededError,
    SelfTransferError,
    TransactionNotFoundError,
)
from app.domain.money import to_wire
from app.domain.transactions import Kind, Status
from app.models import Transaction
from app.services.idempotency import Reply
from app.services.submission import (
    Accepted,
    Line,
    pending_reply,
    record,
    refunded_so_far,
    shard_of,
    submit,
    wallet_of_user,
)
from app.services.wallets import SystemWallets


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    wallet_id: uuid.UUID


@dataclass(frozen=True)
class Idempotency:
    key: str
    digest: str


def check_limit(wiring: Wiring, amount: Decimal) -> None:
    if amount > wiring.config.max_transfer_amount:
        raise AmountTooLargeError(
            f"at most {to_wire(wiring.config.max_transfer_amount)} per transaction"
        )


def _recipient_wallet(session: Session, user_id: uuid.UUID) -> uuid.UUID:
    wallet_id = wallet_of_user(session, user_id)
    if wallet_id is None:
        raise RecipientNotFoundError(f"no user {user_id}")
    return wallet_id


def record_single(
    wiring: Wiring,
    kind: Kind,
    debit: uuid.UUID,
    line: Line,
    initiator: uuid.UUID,
    session: Session,
    parent_id: uuid.UUID | None = None,
) -> Accepted:
    shards = wiring.config.settlement_shards
    [tx_id] = record(
        session,
        kind=kind,
        debit_wallet_id=debit,
        lines=[line],
        initiator_id=initiator,
        shards=shards,
        parent_id=parent_id,
    )
    return Accepted(pending_reply(tx_id), [tx_id], {shard_of(debit, shards)})


def transfer(
    wiring: Wiring,
    caller: Caller,
    idem: Idempotency,
    *,
    recipient_id: uuid.UUID,
    amount: Decimal,
    note: str | None,
    wait_seconds: float = 0,
) -> Reply:
    check_limit(wiring, amount)
    if recipient_id == caller.user_id:
        raise SelfTransferError()

    def action(session: Session) -> Accepted:
        credit = _recipient_wallet(session, recipient_id)
        line = Line(credit, amount, note)
        return record_single(wiring, Kind.TRANSFER, caller.wallet_id, line, caller.user_id, session)

    return submit(
        wiring,
        owner_id=caller.user_id,
        key=idem.key,
        digest=idem.digest,
        action=action,
        wait_seconds=wait_seconds,
        view_wallet_id=caller.wallet_id,
    )


def charge(
    wiring: Wiring,
    system: SystemWallets,
    service_id: uuid.UUID,
    idem: Idempotency,
    *,
    user_id: uuid.UUID,
    amount: Decimal,
    reason: str,
) -> Reply:
    """A service fee: user → platform wallet."""
    check_limit(wiring, amount)
    platform = system.platform()

    def action(session: Session) -> Accepted:
        debit = _recipient_wallet(session, user_id)
        line = Line(platform, amount, reason, {"reason": reason})
        return record_single(wiring, Kind.SERVICE_FEE, debit, line, service_id, session)

    return submit(wiring, owner_id=service_id, key=idem.key, digest=idem.digest, action=action)


@dataclass(frozen=True)
class RewardItem:
    user_id: uuid.UUID
    amount: Decimal
    reason: str


def reward(
    wiring: Wiring,
    system: SystemWallets,
    service_id: uuid.UUID,
    idem: Idempotency,
    items: list[RewardItem],
) -> Reply:
    """Rewards: platform wallet → users, one transaction each, all accepted or none."""
    for item in items:
        check_limit(wiring, item.amount)
    platform = system.platform()
    shards = wiring.config.settlement_shards

    def action(session: Session) -> Accepted:
        lines = [
            Line(
                _recipient_wallet(session, item.user_id),
                item.amount,
                item.reason,
                {"reason": item.reason},
            )
            for item in items
        ]
        ids = record(
            session,
            kind=Kind.REWARD,
            debit_wallet_id=platform,
            lines=lines,
            initiator_id=service_id,
            shards=shards,
        )
        body = {
            "success": True,
            "status": Status.PENDING.value,
            "count": len(ids),
            "transaction_ids": [str(tx_id) for tx_id in ids],
        }
        if len(ids) == 1:
            body["transaction_id"] = str(ids[0])
        return Accepted(Reply(202, body), ids, {shard_of(platform, shards)})

    return submit(wiring, owner_id=service_id, key=idem.key, digest=idem.digest, action=action)


REFUNDABLE = {Kind.TRANSFER.value, Kind.SERVICE_FEE.value}


def refund(
    wiring: Wiring,
    service_id: uuid.UUID,
    idem: Idempotency,
    *,
    transaction_id: uuid.UUID,
    amount: Decimal | None,
) -> Reply:
    """Reverse (part of) a completed transfer or fee: the original credit pays back the original
    debit. Refunds of one original never exceed it in total (pending refunds count)."""

    def action(session: Session) -> Accepted:
        original = session.scalar(
            select(Transaction).where(Transaction.id == transaction_id).with_for_update()
        )
        if original is None:
            raise TransactionNotFoundError()
        if original.kind not in REFUNDABLE or original.status != Status.COMPLETED.value:
            raise NotRefundableError()
        remaining = original.amount - refunded_so_far(session, original.id)
        value = remaining if amount is None else amount
        if value <= 0 or value > remaining:
            raise RefundLimitExceededError(
                f"at most {to_wire(remaining)} can still be refunded", refundable=to_wire(remaining)
            )
        line = Line(
            original.debit_wallet_id,
            value,
            f"refund of {original.id}",
            {"refund_of": str(original.id)},
        )
        return record_single(
            wiring,
            Kind.REFUND,
            original.credit_wallet_id,
            line,
            service_id,
            session,
            parent_id=original.id,
        )

    return submit(wiring, owner_id=service_id, key=idem.key, digest=idem.digest, action=action)


def mint(wiring: Wiring, system: SystemWallets, amount: Decimal, note: str | None) -> uuid.UUID:
    """Issue new tokens into the platform wallet from the issuance account (money stays
    conserved: the issuance account goes negative by exactly what was issued)."""
    shards = wiring.config.settlement_shards
    issuance, platform = system.wallet_id("issuance"), system.platform()
    with wiring.db.transaction() as session:
        [tx_id] = record(
            session,
            kind=Kind.ISSUANCE,
            debit_wallet_id=issuance,
            lines=[Line(platform, amount, note)],
            initiator_id=None,
            shards=shards,
        )
    wiring.queue.kick_settlement(shard_of(issuance, shards))
    return tx_id
