"""Use cases that move money: user transfers, service fees, rewards, refunds, issuance."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from app.bootstrap import Wiring
from app.db import after_commit
from app.domain.errors import SelfTransferError
from app.domain.transactions import Kind, Status
from app.services import step_up
from app.services.idempotency import Reply
from app.services.movement import Caller, Idempotency, check_limit
from app.services.recording import Line, Submission, record
from app.services.submission import submit
from app.services.wallets import Provisioner, SystemWallets


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
    submission = Submission(
        Kind.TRANSFER,
        [Line(None, amount, note, credit_user_id=recipient_id, step_up=step_up_of(wiring))],
        caller.user_id,
        debit_wallet_id=caller.wallet_id,
    )
    return step_up.submit_stepped(
        wiring,
        submission,
        owner_id=caller.user_id,
        key=idem.key,
        digest=idem.digest,
        destination=lambda _signer: f"user {recipient_id}",
        wait_seconds=wait_seconds,
        view_wallet_id=caller.wallet_id,
    )


def step_up_of(wiring: Wiring) -> Decimal | None:
    """The platform's step-up amount for a transfer or withdrawal line (None: no platform
    default; the user's own may still apply)."""
    amount = wiring.config.step_up_amount
    return amount if amount > 0 else None


def charge(
    wiring: Wiring,
    system: SystemWallets,
    service_id: uuid.UUID,
    idem: Idempotency,
    *,
    user_id: uuid.UUID,
    amount: Decimal,
    reason: str,
    provisioner: Provisioner | None = None,
) -> Reply:
    """A service fee: user → platform wallet. With a `provisioner` (the service API), a user the
    wallet has never seen gets their wallet first (and then has nothing to pay with)."""
    check_limit(wiring, amount)
    if provisioner is not None:
        provisioner.ensure_users([user_id])
    submission = Submission(
        Kind.SERVICE_FEE,
        [Line(system.platform(), amount, reason, {"reason": reason})],
        service_id,
        debit_user_id=user_id,
    )
    return submit(wiring, submission, owner_id=service_id, key=idem.key, digest=idem.digest)


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
    provisioner: Provisioner | None = None,
) -> Reply:
    """Rewards: platform wallet → users, one transaction each, all accepted or none. With a
    `provisioner` (the service API), users the wallet has never seen get their wallets first."""
    for item in items:
        check_limit(wiring, item.amount)
    if provisioner is not None:
        provisioner.ensure_users(item.user_id for item in items)
    submission = Submission(
        Kind.REWARD,
        [
            Line(
                None, item.amount, item.reason, {"reason": item.reason}, credit_user_id=item.user_id
            )
            for item in items
        ],
        service_id,
        debit_wallet_id=system.platform(),
    )

    return submit(
        wiring,
        submission,
        owner_id=service_id,
        key=idem.key,
        digest=idem.digest,
        reply=rewards_reply,
    )


def rewards_reply(ids: list[uuid.UUID]) -> Reply:
    """202 for a batch of rewards: every transaction id (and `transaction_id` for a single one)."""
    body: dict[str, Any] = {
        "success": True,
        "status": Status.PENDING.value,
        "count": len(ids),
        "transaction_ids": [str(tx_id) for tx_id in ids],
    }
    if len(ids) == 1:
        body["transaction_id"] = str(ids[0])
    return Reply(202, body)


def refund(
    wiring: Wiring,
    service_id: uuid.UUID,
    idem: Idempotency,
    *,
    transaction_id: uuid.UUID,
    amount: Decimal | None,
) -> Reply:
    """Reverse (part of) a completed transfer or fee: the original credit pays back the original
    debit. Refunds of one original never exceed it in total (pending refunds count); the database
    checks that under a lock on the original (`accept_transactions`)."""
    submission = Submission(
        Kind.REFUND, [], service_id, refund_of=transaction_id, refund_amount=amount
    )
    return submit(wiring, submission, owner_id=service_id, key=idem.key, digest=idem.digest)


def mint(wiring: Wiring, system: SystemWallets, amount: Decimal, note: str | None) -> uuid.UUID:
    """Issue new tokens into the platform wallet from the issuance account (money stays
    conserved: the issuance account goes negative by exactly what was issued)."""
    submission = Submission(
        Kind.ISSUANCE,
        [Line(system.platform(), amount, note)],
        None,
        debit_wallet_id=system.wallet_id("issuance"),
    )
    with wiring.db.transaction() as session:
        recorded = record(session, submission, wiring.config.settlement_shards)
        after_commit(session, lambda: wiring.queue.kick_settlement(recorded.shard))
    return recorded.transaction_ids[0]
