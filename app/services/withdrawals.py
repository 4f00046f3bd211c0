"""Withdrawals to the user's connected Solana address.

PENDING → (ledger batch, in seq order) debited, stage `on_chain` → signed transfer stored *before*
it is sent → sent/rebroadcast → `finalized` → COMPLETED with tx_hash. Rejected on-chain, or
expired without landing → FAILED, and a refund transaction restores the balance.

Exactly once on-chain: one signature per withdrawal. The signed bytes are stored before sending,
so a redelivered task rebroadcasts the same bytes (same signature) and never signs again. A
withdrawal is failed and refunded only when no copy can land: its signature is absent and the
finalized block height is past its blockhash's last valid block height, or the cluster refused
its very first send at preflight (see `_broadcast`).
"""

from __future__ import annotations

import enum
import logging
import math
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from solders.pubkey import Pubkey
from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.bootstrap import Wiring
from app.chain.rpc import ChainError, ChainRejectedError
from app.chain.solana import build_token_transfer
from app.db import after_commit
from app.domain.errors import (
    AddressCooldownError,
    AmountBelowMinimumError,
    DestinationAccountMissingError,
    WalletNotConnectedError,
)
from app.domain.money import to_wire
from app.domain.transactions import FailureReason, Kind, Stage, Status
from app.models import Transaction, Wallet
from app.services import audit, chain_accounts, notifications, step_up
from app.services.idempotency import Reply
from app.services.recording import Line, Submission, record
from app.services.staging import advance_staged
from app.services.transfers import Caller, Idempotency, check_limit, step_up_of
from app.services.wallets import SystemWallets

log = logging.getLogger(__name__)


class Step(enum.StrEnum):
    """What one `process` call did to a withdrawal."""

    NOOP = "noop"
    WAITING = "waiting"
    SENT = "sent"
    CONFIRMING = "confirming"
    COMPLETED = "completed"
    FAILED = "failed"


def request(
    wiring: Wiring, system: SystemWallets, caller: Caller, idem: Idempotency, amount: Decimal
) -> Reply:
    """Record a withdrawal to the caller's connected address (the database stores the address
    with the transaction), once `check_destination` allows it."""
    check_limit(wiring, amount)
    check_destination(wiring, caller.wallet_id, amount)
    submission = Submission(
        Kind.WITHDRAWAL,
        [Line(system.wallet_id("chain"), amount, step_up=step_up_of(wiring))],
        caller.user_id,
        debit_wallet_id=caller.wallet_id,
    )
    return step_up.submit_stepped(
        wiring,
        submission,
        owner_id=caller.user_id,
        key=idem.key,
        digest=idem.digest,
        destination=lambda signer: f"Solana address {signer}",
    )


def check_destination(wiring: Wiring, wallet_id: uuid.UUID, amount: Decimal) -> None:
    """Tiny withdrawals and fresh addresses would drain the treasury's SOL and help a stolen
    session cash out, so a withdrawal needs: at least WITHDRAWAL_MIN_AMOUNT; a connected address
    (`wallet_not_connected`), connected longer ago than the new-address cooldown
    (`address_cooldown`, with `retry_after` seconds); and that address's token account of the
    mint (`destination_account_missing`): the transfer never creates it. When the chain cannot
    tell right now the request goes ahead, since a missing account fails the transfer's
    preflight and the withdrawal is refunded."""
    config = wiring.config
    if amount < config.withdrawal_min_amount:
        minimum = to_wire(config.withdrawal_min_amount)
        raise AmountBelowMinimumError(f"at least {minimum} per withdrawal", minimum=minimum)
    with wiring.db.statement() as conn:
        row = conn.execute(
            select(Wallet.address, Wallet.address_connected_at).where(Wallet.id == wallet_id)
        ).first()
    if row is None or row.address is None:
        raise WalletNotConnectedError()
    address, connected_at = str(row.address), row.address_connected_at
    if connected_at is not None:
        opens_at = connected_at + timedelta(seconds=config.withdrawal_new_address_cooldown_seconds)
        wait = (opens_at - datetime.now(UTC)).total_seconds()
        if wait > 0:
            raise AddressCooldownError(
                f"withdrawals to a newly connected address open at {opens_at.isoformat()}",
                retry_after=math.ceil(wait),
                opens_at=opens_at.isoformat(),
            )
    try:
        exists = wiring.chain_quick.has_token_account(address, config.token_mint)
    except ChainError:
        return
    if not exists:
        raise DestinationAccountMissingError(
            f"{address} has no token account for {config.token_mint}: receive the token there "
            "once (any wallet creates the account), then withdraw"
        )


def _connected_too_recently(
    session: Session, tx: Transaction, address: str, cooldown_seconds: int
) -> bool:
    """The request-time cooldown check reads the wallet before the database records the
    withdrawal with the address connected *then*: a new address connected in between would
    slip through. So before signing, a withdrawal whose address is still the wallet's and was
    connected less than the cooldown before the request is refused (and refunded)."""
    connected_at = session.scalar(
        select(Wallet.address_connected_at).where(
            Wallet.id == tx.debit_wallet_id, Wallet.address == address
        )
    )
    cooldown = timedelta(seconds=cooldown_seconds)
    return connected_at is not None and connected_at > tx.created_at - cooldown


def process(wiring: Wiring, system: SystemWallets, tx_id: uuid.UUID) -> Step:
    """Move one withdrawal forward on-chain. Idempotent; RPC trouble raises ChainUnavailableError
    and changes nothing."""
    config, chain = wiring.config, wiring.chain
    with wiring.db.transaction() as session:
        tx = session.get(Transaction, tx_id)
        if tx is None or tx.status != Status.PENDING.value or tx.stage != Stage.ON_CHAIN:
            return Step.NOOP
        raw, signature, valid_until = tx.signed_tx, tx.tx_hash, tx.last_valid_block_height
        address, amount = tx.details["address"], tx.amount
        too_recent = raw is None and _connected_too_recently(
            session, tx, address, config.withdrawal_new_address_cooldown_seconds
        )
    if too_recent:
        return fail(wiring, system, tx_id, FailureReason.ADDRESS_COOLDOWN)
    if raw is None:
        blockhash, valid_until = chain.latest_blockhash()
        signed = build_token_transfer(
            chain_accounts.treasury(config),
            chain_accounts.mint(config),
            Pubkey.from_string(address),
            chain_accounts.to_units(amount, config.token_decimals),
            config.token_decimals,
            blockhash,
            valid_until,
            memo=str(tx_id),
        )
        with wiring.db.transaction() as session:  # stored before it is ever sent
            stored = session.execute(
                update(Transaction)
                .where(Transaction.id == tx_id, Transaction.signed_tx.is_(None))
                .values(
                    signed_tx=signed.raw,
                    tx_hash=signed.signature,
                    last_valid_block_height=valid_until,
                    updated_at=func.now(),
                )
            ).rowcount  # type: ignore[attr-defined]
        if not stored:  # another worker signed first: use its bytes
            return process(wiring, system, tx_id)
        raw, signature = signed.raw, signed.signature
    assert raw is not None and signature is not None and valid_until is not None

    status = chain.signature_status(signature)
    if status is None:
        # Expired only in the finalized view: no fork that could still include it is left.
        if chain.block_height("finalized") > valid_until:
            if chain.signature_status(signature) is None:  # known absent, and can never land
                return fail(wiring, system, tx_id, FailureReason.EXPIRED)
            status = chain.signature_status(signature)
        else:
            return _broadcast(wiring, system, tx_id, raw)
    if status is None:
        return Step.WAITING
    if status.err is not None:
        return fail(wiring, system, tx_id, FailureReason.CHAIN_REJECTED, str(status.err))
    if status.finalized:
        with wiring.db.transaction() as session:
            done = advance_staged(
                session,
                tx_id,
                Stage.ON_CHAIN,
                status=Status.COMPLETED.value,
                stage=None,
                completed_at=func.now(),
            )
            if done is not None:
                audit.record(
                    session, "withdrawal.completed", actor_id=None, target=tx_id, tx_hash=signature
                )
            told = (
                []
                if done is None
                else notifications.write_outcome(
                    wiring,
                    session,
                    kind=Kind.WITHDRAWAL.value,
                    status=Status.COMPLETED.value,
                    transaction_id=tx_id,
                    amount=done.amount,
                    debit_wallet=done.debit_wallet_id,
                    credit_wallet=None,
                )
            )
        notifications.dispatch(wiring, told)
        return Step.COMPLETED if done is not None else Step.NOOP
    return Step.CONFIRMING


def _broadcast(wiring: Wiring, system: SystemWallets, tx_id: uuid.UUID, raw: bytes) -> Step:
    """Send (or rebroadcast) the stored bytes, counting the send first.

    A preflight refusal means the node did not forward the bytes, so it settles the matter only
    when it refused the one and only send: the refusal's compare-and-set on `chain_sends = 1`
    loses to any other worker that counted a send meanwhile. After an earlier send the first copy
    may still land until its blockhash expires, so the withdrawal stays pending and is failed
    (refunded) only once its signature is absent past the last valid block height.
    """
    with wiring.db.transaction() as session:
        sends = session.execute(
            update(Transaction)
            .where(
                Transaction.id == tx_id,
                Transaction.status == Status.PENDING.value,
                Transaction.stage == Stage.ON_CHAIN,
            )
            .values(chain_sends=Transaction.chain_sends + 1, updated_at=func.now())
            .returning(Transaction.chain_sends)
        ).scalar()
    if sends is None:
        return Step.NOOP  # moved on meanwhile: nothing is sent after a verdict
    try:
        wiring.chain.send(raw)  # first send, or a rebroadcast of the same signature
    except ChainRejectedError as exc:
        if "BlockhashNotFound" in f"{exc} {exc.data}":
            return Step.WAITING  # the node may lag; decide at expiry
        log.warning("withdrawal %s rejected (send %s): %s %s", tx_id, sends, exc, exc.data)
        if sends == 1:
            return fail(
                wiring,
                system,
                tx_id,
                FailureReason.CHAIN_REJECTED,
                str(exc),
                guard=(Transaction.chain_sends == 1,),
            )
        return Step.WAITING
    return Step.SENT


def fail(
    wiring: Wiring,
    system: SystemWallets,
    tx_id: uuid.UUID,
    reason: FailureReason,
    detail: str | None = None,
    guard: tuple[Any, ...] = (),
) -> Step:
    """FAILED, and a refund transaction (chain → user) that restores the debited balance."""
    shards = wiring.config.settlement_shards
    chain_wallet = system.wallet_id("chain")
    with wiring.db.transaction() as session:
        failed = advance_staged(
            session,
            tx_id,
            Stage.ON_CHAIN,
            guard,
            status=Status.FAILED.value,
            stage=None,
            failure_reason=reason.value,
            details=Transaction.details.op("||")({"chain_error": detail}),
        )
        if failed is None:
            return Step.NOOP
        audit.record(
            session,
            "withdrawal.failed",
            actor_id=None,
            target=tx_id,
            reason=reason.value,
            chain_error=detail,
        )
        told = notifications.write_outcome(
            wiring,
            session,
            kind=Kind.WITHDRAWAL.value,
            status=Status.FAILED.value,
            transaction_id=tx_id,
            amount=failed.amount,
            debit_wallet=failed.debit_wallet_id,
            credit_wallet=None,
            reason=reason.value,
        )
        refund = record(
            session,
            Submission(
                Kind.REFUND,
                [
                    Line(
                        failed.debit_wallet_id,
                        failed.amount,
                        f"refund of withdrawal {tx_id}",
                        {"refund_of": str(tx_id)},
                    )
                ],
                None,
                debit_wallet_id=chain_wallet,
                parent_id=tx_id,
            ),
            shards,
        )
        after_commit(session, lambda: wiring.queue.kick_settlement(refund.shard))
    notifications.dispatch(wiring, told)
    return Step.FAILED


def open_withdrawals(wiring: Wiring) -> list[uuid.UUID]:
    with wiring.db.transaction() as session:
        return list(
            session.scalars(
                select(Transaction.id)
                .where(Transaction.stage == Stage.ON_CHAIN)
                .order_by(Transaction.created_at)
                .limit(1000)
            )
        )
