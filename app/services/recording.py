"""Recording money movements as PENDING transactions: the call of the database function
`accept_transactions` (migrations 0007, 0011, 0015) and the mapping of its refusals to problems.

In one round trip it claims the Idempotency-Key (when given), resolves the counterparties (a user
id names a user's wallet, never a system wallet), reserves the amount on the debit wallet's
submit-side counters (available = balance − reserved must cover it), hands out the wallet's next
`seq`, and inserts the transactions and their audit entries. It never touches the wallet row
settlement locks, so accepting a request never waits for a settlement batch. `record` runs it
inside a caller's unit of work; `app.services.submission.submit` runs it alone, idempotently.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
from sqlalchemy import Connection, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from app import logs
from app.advisory_locks import Namespace
from app.db import json_rows
from app.domain.errors import (
    InsufficientBalanceError,
    NotRefundableError,
    RecipientNotFoundError,
    RefundLimitExceededError,
    StepUpUnavailableError,
    TransactionNotFoundError,
    WalletError,
    WalletInactiveError,
    WalletNotConnectedError,
    WalletNotFoundError,
)
from app.domain.money import to_wire
from app.domain.transactions import Kind
from app.services import audit

# Driver paramstyle: run on a raw cursor by `submit`, through `exec_driver_sql` by `record`.
ACCEPT = """
    SELECT * FROM accept_transactions(
        %(kind)s::text, %(debit_wallet)s::uuid, %(debit_user)s::uuid, %(lines)s::jsonb,
        %(initiator)s::uuid, %(shards)s::int, %(parent)s::uuid, %(refund_of)s::uuid,
        %(refund_amount)s::numeric, %(owner)s::uuid, %(key)s::text, %(fingerprint)s::text,
        %(expires_at)s::timestamptz, %(locked_until)s::timestamptz, %(response_status)s::int,
        %(response)s::jsonb, %(request_id)s::text, %(ip)s::text)
"""
# `submit`'s form: also whether a settlement job is running on the new transactions' shard and
# will look for pending work after this commits (migrations 0017, 0018); then it needs no kick.
ACCEPT_SEEN = f"SELECT a.*, settlement_running(a.shard) AS settling FROM ({ACCEPT}) AS a"


@dataclass(frozen=True)
class Line:
    """One transaction to record: to a wallet, or to a user's wallet (`credit_user_id`, resolved
    by the database to a wallet of kind `user` only — an unknown user or a system account is
    `recipient_not_found`, migration 0011)."""

    credit_wallet_id: uuid.UUID | None
    amount: Decimal
    note: str | None = None
    details: dict[str, Any] = field(default_factory=dict)
    # Chain-bound transactions only (deposits): kept out of ledger batches until paid.
    stage: str | None = None
    reference: str | None = None
    expires_at: datetime | None = None
    credit_user_id: uuid.UUID | None = None
    # Transfers and withdrawals: the platform's step-up amount (the database takes the lower of
    # it and the user's own; at or above it the movement needs confirmation, migration 0015).
    step_up: Decimal | None = None


@dataclass(frozen=True)
class Submission:
    """What to record: transactions of one kind debiting one wallet (given, or the user wallet of
    `debit_user_id`). A refund names the original instead of lines: the database derives the
    counterparties and checks the amount still refundable (`refund_amount` None = all of it).
    The database pays each kind only from its kind of wallet (a user's, the platform's for
    rewards, an external account's for issuance and deposits), else `wallet_not_found`."""

    kind: Kind
    lines: list[Line]
    initiator_id: uuid.UUID | None
    debit_wallet_id: uuid.UUID | None = None
    debit_user_id: uuid.UUID | None = None
    parent_id: uuid.UUID | None = None
    refund_of: uuid.UUID | None = None
    refund_amount: Decimal | None = None
    ids: tuple[uuid.UUID, ...] = ()  # chosen by the caller (a step-up message names its id)

    def new_ids(self) -> list[uuid.UUID]:
        if self.ids:
            return list(self.ids)
        return [uuid.uuid4() for _ in range(max(len(self.lines), 1))]  # a refund has one


@dataclass(frozen=True)
class Recorded:
    transaction_ids: list[uuid.UUID]
    debit_wallet_id: uuid.UUID
    shard: int


def shard_of(wallet_id: uuid.UUID, shards: int) -> int:
    """The settlement shard of a debit wallet: its id's low 32 bits modulo the shard count
    (`accept_transactions` computes the same in the database, migration 0007)."""
    return int.from_bytes(wallet_id.bytes[12:], "big") % shards


def accept_params(submission: Submission, ids: list[uuid.UUID], shards: int) -> dict[str, Any]:
    lines: list[dict[str, Any]] = (
        [{"id": ids[0]}]
        if submission.refund_of
        else [
            {
                "id": tx_id,
                "credit_wallet": line.credit_wallet_id,
                "credit_user": line.credit_user_id,
                "amount": line.amount,
                "note": line.note,
                "details": line.details,
                "stage": line.stage,
                "reference": line.reference,
                "expires_at": line.expires_at.isoformat() if line.expires_at else None,
                "step_up": line.step_up,
            }
            for tx_id, line in zip(ids, submission.lines, strict=True)
        ]
    )
    return {
        "kind": submission.kind.value,
        "debit_wallet": submission.debit_wallet_id,
        "debit_user": submission.debit_user_id,
        "lines": json_rows([{k: v for k, v in line.items() if v is not None} for line in lines]),
        "initiator": submission.initiator_id,
        "shards": shards,
        "parent": submission.parent_id,
        "refund_of": submission.refund_of,
        "refund_amount": submission.refund_amount,
        "owner": None,
        "key": None,
        "fingerprint": None,
        "expires_at": None,
        "locked_until": None,
        "response_status": None,
        "response": None,
        "request_id": logs.request_id.get(),
        "ip": audit.client_ip.get(),
    }


# The jobs that release reservations of many wallets in one statement (escrow-hold expiry,
# unconfirmed step-up expiry) take this transaction-level advisory lock, so they never run at
# once: each locks several counters rows in no particular order, and two of them could deadlock.
# Everything else locks one counters row at a time.
RELEASE_JOBS_LOCK = text(f"SELECT pg_try_advisory_xact_lock({Namespace.RELEASE_JOBS:d}, 0)")


class StepUpRequiredError(WalletError):
    """The movement needs step-up confirmation: record it again awaiting it (`step_up`), to be
    signed by `address` (the connected one). Never answered to a client as such."""

    code = "step_up_required"
    status = 409
    title = "Confirmation required"

    def __init__(self, address: str) -> None:
        super().__init__("confirm with the connected wallet")
        self.address = address


REFUSED = "WL001"
_REFUSALS: dict[str, type[WalletError]] = {
    error.code: error
    for error in (
        RecipientNotFoundError,
        WalletNotFoundError,
        WalletInactiveError,
        WalletNotConnectedError,
        TransactionNotFoundError,
        NotRefundableError,
        StepUpUnavailableError,
    )
}


@contextmanager
def refusals() -> Iterator[None]:
    """`accept_transactions` refuses with SQLSTATE WL001 and the problem code as its message."""
    try:
        yield
    except (DBAPIError, psycopg.Error) as exc:
        error = exc.orig if isinstance(exc, DBAPIError) else exc
        if not isinstance(error, psycopg.Error) or error.sqlstate != REFUSED:
            raise
        diag = error.diag
        raise _refusal(diag.message_primary or "", diag.message_detail, diag.message_hint) from None


def _refusal(code: str, detail: str | None, hint: str | None) -> WalletError:
    if code == InsufficientBalanceError.code:
        available = to_wire(Decimal(detail or 0))
        return InsufficientBalanceError(
            f"available balance {available} is below {to_wire(Decimal(hint or 0))}",
            available_balance=available,
        )
    if code == StepUpRequiredError.code:
        return StepUpRequiredError(detail or "")
    if code == StepUpUnavailableError.code:
        return StepUpUnavailableError(
            "this amount needs confirmation by your connected external wallet: connect one"
            " (POST /api/wallet/challenge, then /api/wallet/connect) and try again"
        )
    if code == RefundLimitExceededError.code:
        remaining = to_wire(Decimal(detail or 0))
        return RefundLimitExceededError(
            f"at most {remaining} can still be refunded", refundable=remaining
        )
    return _REFUSALS[code](detail)


def record(db: Session | Connection, submission: Submission, shards: int) -> Recorded:
    """Reserve and record one PENDING transaction per line, all debiting one wallet, atomically,
    inside the caller's unit of work (no Idempotency-Key)."""
    ids = submission.new_ids()
    conn = db.connection() if isinstance(db, Session) else db
    with refusals():
        row = conn.exec_driver_sql(ACCEPT, accept_params(submission, ids, shards)).one()
    return Recorded(ids, row.debit_wallet, row.shard)
