"""The statement export: a wallet's transactions in a period as CSV (RFC 4180), streamed.

One query — the two history indexes (`ix_transactions_debit_history`,
`ix_transactions_credit_history`) each give one side of the period in `created_at` order, the
ledger entry (unique on transaction and wallet) gives the balance after — read through a
server-side cursor in batches and written out as it is read, so a statement of any length costs
the same memory as one batch.

Text a user chose (a transfer's note, written by its sender) is neutralised against spreadsheet
formula injection: a cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a
leading apostrophe (OWASP "CSV Injection").
"""

from __future__ import annotations

import csv
import io
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import text

from app.db import Database
from app.domain.money import to_wire

BATCH = 2000
HEADER = (
    "date",
    "kind",
    "counterparty",
    "note",
    "amount",
    "balance_after",
    "status",
    "tx_hash",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

_STATEMENT = text(
    """
    SELECT t.created_at, t.kind, t.status, t.note, t.tx_hash, t.outgoing,
           CASE WHEN t.outgoing THEN -t.amount ELSE t.amount END AS signed_amount,
           e.balance_after,
           CASE o.kind WHEN 'user' THEN o.user_id::text
                       WHEN 'platform' THEN 'platform'
                       ELSE CASE WHEN t.kind = 'withdrawal'
                                 THEN COALESCE('solana:' || (t.details ->> 'address'), 'chain')
                                 WHEN t.kind IN ('deposit', 'refund') THEN 'chain'
                                 ELSE 'issuance' END
           END AS counterparty
      FROM (
            (SELECT id, kind, status, note, tx_hash, amount, details, created_at, true AS outgoing,
                    credit_wallet_id AS other
               FROM transactions
              WHERE debit_wallet_id = :wallet_id
                AND created_at >= :since AND created_at < :until
              ORDER BY created_at, id)
            UNION ALL
            (SELECT id, kind, status, note, tx_hash, amount, details, created_at, false,
                    debit_wallet_id
               FROM transactions
              WHERE credit_wallet_id = :wallet_id
                AND created_at >= :since AND created_at < :until
              ORDER BY created_at, id)
           ) AS t
      JOIN wallets o ON o.id = t.other
      LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND e.wallet_id = :wallet_id
     ORDER BY t.created_at, t.id
    """
)


def _safe(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(_FORMULA_START) else value


def _row(r: Any) -> tuple[str, ...]:
    return (
        r.created_at.isoformat(),
        r.kind,
        r.counterparty,
        _safe(r.note),
        to_wire(r.signed_amount),
        "" if r.balance_after is None else to_wire(r.balance_after),
        r.status,
        r.tx_hash or "",
    )


def csv_lines(
    db: Database, wallet_id: uuid.UUID, since: datetime, until: datetime
) -> Iterator[str]:
    """The statement, a chunk of CSV text at a time (header first); the database connection is
    held only while the response streams, and released when it ends or the client goes."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")  # RFC 4180: CRLF, quotes doubled

    def flush() -> str:
        chunk = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return chunk

    writer.writerow(HEADER)
    yield flush()
    with db.engine.connect() as conn, conn.begin():
        result = conn.execution_options(stream_results=True).execute(
            _STATEMENT, {"wallet_id": wallet_id, "since": since, "until": until}
        )
        # the size given here, not as a `yield_per` execution option: SQLAlchemy 2.1 ignores
        # that one for Core statements and fetched the whole statement at once
        for partition in result.partitions(BATCH):
            writer.writerows(_row(r) for r in partition)
            yield flush()
