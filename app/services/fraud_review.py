"""Transactions held by the fraud rules: the admins' queue, release and reject.

Four eyes: an admin who sent or receives a held transaction may not decide about it (403
`own_transaction`, audited as `admin.decision_refused`).

A decision runs in its own database transaction: the held row is locked first (two admins
deciding at once are serialized; the second finds it no longer held). The domain decides on the
wallets as read (`release_held` settles it exactly as a batch would; `reject_held` frees the
reservation) and the settlement batches' writer (`batch_writes.write`) writes the decision: it
locks both wallets in id order like the batches, applies the decision on top of what other jobs
committed meanwhile, and tells the users. The audit entry commits with it. Notifications are
pushed and a released withdrawal is handed to the chain worker only after that commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

from sqlalchemy import select

from app.bootstrap import Wiring
from app.db import after_commit
from app.domain.errors import PermissionDeniedError, TransactionNotFoundError, WalletError
from app.domain.settlement import (
    BatchResult,
    PendingTx,
    WalletState,
    reject_held,
    release_held,
)
from app.domain.transactions import Status
from app.models import Transaction
from app.queue import PROCESS_WITHDRAWAL
from app.services import audit, batch_writes, notifications
from app.services.history import ADMIN_ITEM, Credit, Debit


class TransactionNotHeldError(WalletError):
    code = "transaction_not_held"
    status = 409
    title = "Transaction is not held"


class TransactionNotReleasableError(WalletError):
    code = "transaction_not_releasable"
    status = 409
    title = "Held transaction cannot settle now"


class OwnTransactionError(PermissionDeniedError):
    """Four eyes: whoever sent or receives a held transaction does not decide about it."""

    code = "own_transaction"
    title = "Another admin must decide on a transaction you are a party to"


def release(wiring: Wiring, tx_id: uuid.UUID, admin_id: uuid.UUID) -> dict[str, Any]:
    """Settle a held transaction now (a withdrawal: debit it and send it on-chain)."""
    return _decide(wiring, tx_id, admin_id, _release, "release")


def reject(wiring: Wiring, tx_id: uuid.UUID, admin_id: uuid.UUID) -> dict[str, Any]:
    """FAILED `rejected`; the reservation is freed and the sender told."""
    return _decide(wiring, tx_id, admin_id, _reject, "reject")


def _release(wallets: dict[uuid.UUID, WalletState], tx: PendingTx) -> BatchResult:
    result = release_held(wallets, tx, notify_outcomes=False)  # the writer tells the users
    for outcome in result.outcomes:
        if outcome.status is Status.FAILED and outcome.reason is not None:
            raise TransactionNotReleasableError(
                f"it would fail: {outcome.reason.value}", reason=outcome.reason.value
            )
    return result


def _reject(wallets: dict[uuid.UUID, WalletState], tx: PendingTx) -> BatchResult:
    return reject_held(wallets, tx, notify_outcomes=False)


_ATTEMPTS = 3
_AUDITED = {"release": "admin.transaction_released", "reject": "admin.transaction_rejected"}


def _decide(
    wiring: Wiring,
    tx_id: uuid.UUID,
    admin_id: uuid.UUID,
    decide: Callable[[dict[uuid.UUID, WalletState], PendingTx], BatchResult],
    decision: str,
) -> dict[str, Any]:
    try:
        for attempt in range(1, _ATTEMPTS + 1):
            try:
                return _decided(wiring, tx_id, admin_id, decide, _AUDITED[decision])
            except batch_writes.ConcurrentChangeError:
                # a wallet (de)activated between the read and the lock: decide again
                if attempt == _ATTEMPTS:
                    raise
        raise AssertionError("unreachable")
    except OwnTransactionError:
        audit.record_alone(
            wiring.db,
            "admin.decision_refused",
            actor_id=admin_id,
            target=tx_id,
            decision=decision,
            reason=OwnTransactionError.code,
        )
        raise


def _decided(
    wiring: Wiring,
    tx_id: uuid.UUID,
    admin_id: uuid.UUID,
    decide: Callable[[dict[uuid.UUID, WalletState], PendingTx], BatchResult],
    action: str,
) -> dict[str, Any]:
    with wiring.db.transaction() as session:
        row = session.execute(
            select(
                Transaction.id,
                Transaction.debit_wallet_id,
                Transaction.credit_wallet_id,
                Transaction.amount,
                Transaction.seq,
                Transaction.created_at,
                Transaction.kind,
                Transaction.status,
                Transaction.failure_reason,
                Debit.user_id.label("debit_user_id"),
                Credit.user_id.label("credit_user_id"),
            )
            .join(Debit, Debit.id == Transaction.debit_wallet_id)
            .join(Credit, Credit.id == Transaction.credit_wallet_id)
            .where(Transaction.id == tx_id)
            .with_for_update(key_share=True, of=Transaction)
        ).first()
        if row is None:
            raise TransactionNotFoundError()
        if admin_id in (row.debit_user_id, row.credit_user_id):
            raise OwnTransactionError("you sent or receive this transaction")
        if row.status != Status.HELD.value:
            raise TransactionNotHeldError(
                f"transaction is {row.status}", transaction_status=row.status
            )
        tx = PendingTx(
            row.id,
            row.debit_wallet_id,
            row.credit_wallet_id,
            row.amount,
            row.seq,
            row.created_at,
            row.kind,
        )
        result, told = batch_writes.write_decision(
            session.connection(), wiring.config, tx, decide, from_state=(Status.HELD, None)
        )
        [outcome] = result.outcomes
        audit.record(
            session,
            action,
            actor_id=admin_id,
            target=tx.id,
            kind=tx.kind,
            amount=tx.amount,
            hold_reason=row.failure_reason,
            status=outcome.stage or outcome.status.value,
        )
        item = dict(session.execute(ADMIN_ITEM.where(Transaction.id == tx.id)).one()._mapping)
        for withdrawal_id in result.sent_on_chain:
            after_commit(
                session, partial(wiring.queue.send, PROCESS_WITHDRAWAL, str(withdrawal_id))
            )
    notifications.dispatch(wiring, told)
    return item
