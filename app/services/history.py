"""Reading a wallet's transactions: history, filters, keyset pagination, one transaction."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Select, and_, case, or_, select, tuple_, union_all
from sqlalchemy.orm import Session, aliased

from app.db import Database
from app.domain.accounts import CHAIN_USER_ID, ISSUANCE_USER_ID, PLATFORM_USER_ID, WalletKind
from app.domain.errors import TransactionNotFoundError, WalletError
from app.models import LedgerEntry, Transaction, Wallet

SYSTEM_NAMES = {PLATFORM_USER_ID: "platform", ISSUANCE_USER_ID: "issuance", CHAIN_USER_ID: "chain"}


class InvalidCursorError(WalletError):
    code = "invalid_cursor"
    status = 422
    title = "Invalid pagination cursor"


@dataclass(frozen=True)
class TransactionView:
    id: uuid.UUID
    type: str
    amount: Decimal  # signed from the viewing wallet's side
    status: str
    note: str | None
    failure_reason: str | None
    balance_after: Decimal | None
    tx_hash: str | None
    created_at: datetime
    completed_at: datetime | None
    direction: str  # "debit" | "credit"
    stage: str | None = None  # chain-bound work: "awaiting_payment" (a deposit), "on_chain"
    # The other party: a user's id, or the system account's name ("platform", "issuance",
    # "chain"); None where the query did not ask (the overview).
    counterparty: str | None = None

    @property
    def timestamp(self) -> datetime:
        return self.created_at


@dataclass(frozen=True)
class Filters:
    type: str | None = None
    status: str | None = None
    since: datetime | None = None
    until: datetime | None = None


def encode_cursor(created_at: datetime, tx_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{tx_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, tx_id = raw.split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(tx_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidCursorError() from None


_T = Transaction.__table__.c
_E = LedgerEntry.__table__.c
_COLUMNS = (
    _T.id,
    _T.kind,
    _T.status,
    _T.stage,
    _T.note,
    _T.failure_reason,
    _T.tx_hash,
    _T.amount,
    _T.debit_wallet_id,
    _T.credit_wallet_id,
    _T.created_at,
    _T.completed_at,
)


def _newest(wallet_id: uuid.UUID, filters: Filters, cursor: str | None, limit: int) -> Select[Any]:
    """Newest first, as one index range scan per side: a wallet's debits and its credits each
    walk their own (wallet, created_at, id) index, LIMIT rows at most, and the two are merged —
    the cost does not grow with the length of the history (an OR of the two sides would read the
    whole history to sort it)."""
    conditions = []
    if filters.type:
        conditions.append(_T.kind == filters.type)
    if filters.status:
        conditions.append(_T.status == filters.status)
    if filters.since:
        conditions.append(_T.created_at >= filters.since)
    if filters.until:
        conditions.append(_T.created_at < filters.until)
    if cursor:
        created_at, tx_id = decode_cursor(cursor)
        conditions.append(tuple_(_T.created_at, _T.id) < (created_at, tx_id))
    sides = [
        select(*_COLUMNS)
        .where(side == wallet_id, *conditions)
        .order_by(_T.created_at.desc(), _T.id.desc())
        .limit(limit)
        for side in (_T.debit_wallet_id, _T.credit_wallet_id)
    ]
    merged = union_all(*sides).subquery("merged")
    other = case(
        (merged.c.debit_wallet_id == wallet_id, merged.c.credit_wallet_id),
        else_=merged.c.debit_wallet_id,
    )
    _W = Wallet.__table__.c
    return (
        select(merged, _E.balance_after, _W.user_id.label("counterparty_user_id"))
        .outerjoin(
            LedgerEntry.__table__,
            and_(_E.transaction_id == merged.c.id, _E.wallet_id == wallet_id),
        )
        .outerjoin(Wallet.__table__, _W.id == other)
        .order_by(merged.c.created_at.desc(), merged.c.id.desc())
        .limit(limit)
    )


def view(wallet_id: uuid.UUID, row: Any) -> TransactionView:
    """A transaction as this wallet sees it (`row` carries the columns of `_COLUMNS` and the
    wallet's `balance_after`)."""
    debit = row.debit_wallet_id == wallet_id
    return TransactionView(
        id=row.id,
        type=row.kind,
        amount=-row.amount if debit else row.amount,
        status=row.status,
        note=row.note,
        failure_reason=row.failure_reason,
        balance_after=row.balance_after,
        tx_hash=row.tx_hash,
        created_at=row.created_at,
        completed_at=row.completed_at,
        direction="debit" if debit else "credit",
        stage=row.stage,
        counterparty=_party(getattr(row, "counterparty_user_id", None)),
    )


def _party(user_id: uuid.UUID | None) -> str | None:
    if user_id is None:
        return None
    return SYSTEM_NAMES.get(user_id, str(user_id))


def list_transactions(
    db: Session | Connection,
    wallet_id: uuid.UUID,
    filters: Filters = Filters(),
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[TransactionView], str | None]:
    """Newest first, in one query. The cursor is the (created_at, id) of the last item seen, so
    new arrivals never shift the pages that follow."""
    rows = db.execute(_newest(wallet_id, filters, cursor, limit + 1)).all()
    items = [view(wallet_id, row) for row in rows[:limit]]
    next_cursor = (
        encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
    )
    return items, next_cursor


_ONE = """
    SELECT t.id, t.kind, t.status, t.stage, t.note, t.failure_reason, t.tx_hash, t.amount,
           t.debit_wallet_id, t.created_at, t.completed_at, e.balance_after,
           w.user_id AS counterparty_user_id
      FROM transactions t
      LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND e.wallet_id = %(wallet_id)s
      LEFT JOIN wallets w ON w.id = CASE WHEN t.debit_wallet_id = %(wallet_id)s
                                         THEN t.credit_wallet_id ELSE t.debit_wallet_id END
     WHERE t.id = %(tx_id)s
       AND (t.debit_wallet_id = %(wallet_id)s OR t.credit_wallet_id = %(wallet_id)s)
"""


def get_transaction(db: Database, wallet_id: uuid.UUID, tx_id: uuid.UUID) -> TransactionView:
    """One transaction, only if this wallet is a party to it; anyone else's is 'not found'."""
    with db.cursor() as cur:
        row = cur.execute(_ONE, {"wallet_id": wallet_id, "tx_id": tx_id}).fetchone()
    if row is None:
        raise TransactionNotFoundError()
    return view(wallet_id, row)


@dataclass(frozen=True)
class AdminFilters:
    status: str | None = None
    kind: str | None = None
    user_id: uuid.UUID | None = None


# A transaction as admins see it: both sides' users (fraud review answers the same shape).
Debit, Credit = aliased(Wallet), aliased(Wallet)
ADMIN_ITEM = (
    select(
        Transaction.id,
        Transaction.kind,
        Transaction.status,
        Transaction.stage,
        Transaction.amount,
        Debit.user_id.label("debit_user_id"),
        Credit.user_id.label("credit_user_id"),
        Transaction.failure_reason.label("reason"),
        Transaction.created_at,
        Transaction.updated_at,
    )
    .join(Debit, Debit.id == Transaction.debit_wallet_id)
    .join(Credit, Credit.id == Transaction.credit_wallet_id)
)


def all_transactions(
    session: Session, filters: AdminFilters, *, limit: int, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Every wallet's transactions, newest first (`status=held` is the review queue); the cursor
    is the (created_at, id) of the last item seen."""
    query = ADMIN_ITEM
    if filters.status:
        query = query.where(Transaction.status == filters.status)
    if filters.kind:
        query = query.where(Transaction.kind == filters.kind)
    if filters.user_id is not None:  # a user's wallet: a system account's id finds no user
        wallet_id = session.scalar(
            select(Wallet.id).where(
                Wallet.user_id == filters.user_id, Wallet.kind == WalletKind.USER.value
            )
        )
        if wallet_id is None:
            return [], None
        query = query.where(
            or_(Transaction.debit_wallet_id == wallet_id, Transaction.credit_wallet_id == wallet_id)
        )
    if cursor:
        query = query.where(tuple_(Transaction.created_at, Transaction.id) < decode_cursor(cursor))
    rows = session.execute(
        query.order_by(Transaction.created_at.desc(), Transaction.id.desc()).limit(limit + 1)
    ).all()
    items = [dict(r._mapping) for r in rows[:limit]]
    last = items[-1] if len(rows) > limit and items else None
    return items, (encode_cursor(last["created_at"], last["id"]) if last else None)
