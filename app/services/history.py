"""Reading a wallet's transactions: history, filters, keyset pagination, one transaction."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import Select, and_, or_, select, tuple_
from sqlalchemy.orm import Session

from app.domain.errors import TransactionNotFoundError, WalletError
from app.models import LedgerEntry, Transaction


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


def _query(wallet_id: uuid.UUID) -> Select[Transaction, Decimal]:
    return (
        select(Transaction, LedgerEntry.balance_after)
        .outerjoin(
            LedgerEntry,
            and_(LedgerEntry.transaction_id == Transaction.id, LedgerEntry.wallet_id == wallet_id),
        )
        .where(
            or_(Transaction.debit_wallet_id == wallet_id, Transaction.credit_wallet_id == wallet_id)
        )
    )


def _view(wallet_id: uuid.UUID, tx: Transaction, balance_after: Decimal | None) -> TransactionView:
    debit = tx.debit_wallet_id == wallet_id
    return TransactionView(
        id=tx.id,
        type=tx.kind,
        amount=-tx.amount if debit else tx.amount,
        status=tx.status,
        note=tx.note,
        failure_reason=tx.failure_reason,
        balance_after=balance_after,
        tx_hash=tx.tx_hash,
        created_at=tx.created_at,
        completed_at=tx.completed_at,
        direction="debit" if debit else "credit",
    )


def list_transactions(
    session: Session,
    wallet_id: uuid.UUID,
    filters: Filters = Filters(),
    limit: int = 20,
    cursor: str | None = None,
) -> tuple[list[TransactionView], str | None]:
    """Newest first. The cursor is the (created_at, id) of the last item seen, so new arrivals
    never shift the pages that follow."""
    query = _query(wallet_id)
    if filters.type:
        query = query.where(Transaction.kind == filters.type)
    if filters.status:
        query = query.where(Transaction.status == filters.status)
    if filters.since:
        query = query.where(Transaction.created_at >= filters.since)
    if filters.until:
        query = query.where(Transaction.created_at < filters.until)
    if cursor:
        created_at, tx_id = decode_cursor(cursor)
        query = query.where(tuple_(Transaction.created_at, Transaction.id) < (created_at, tx_id))
    rows = session.execute(
        query.order_by(Transaction.created_at.desc(), Transaction.id.desc()).limit(limit + 1)
    ).all()
    items = [_view(wallet_id, tx, balance_after) for tx, balance_after in rows[:limit]]
    next_cursor = (
        encode_cursor(items[-1].created_at, items[-1].id) if len(rows) > limit and items else None
    )
    return items, next_cursor


def get_transaction(session: Session, wallet_id: uuid.UUID, tx_id: uuid.UUID) -> TransactionView:
    """One transaction, only if this wallet is a party to it; anyone else's is 'not found'."""
    row = session.execute(_query(wallet_id).where(Transaction.id == tx_id)).first()
    if row is None:
        raise TransactionNotFoundError()
    return _view(wallet_id, row[0], row[1])
