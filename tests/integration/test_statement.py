"""The CSV statement export (RFC 4180), through the real pipeline and for 100,000 rows."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from app.services import invariants, statement
from tests.support import auth, fund, provision, wait_settled, wallet

pytestmark = pytest.mark.usefixtures("worker")


def _statement(client: Any, user: uuid.UUID, **query: str) -> Any:
    return client.get("/api/wallet/statement", query_string=query, headers=auth(user))


def _rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.mimetype == "text/csv"
    body = response.get_data(as_text=True)
    assert body.endswith("\r\n")
    return list(csv.reader(io.StringIO(body, newline="")))


def test_a_statement_lists_both_sides_signed_with_balances_and_quotes_what_needs_it(
    app: Any, client: Any, db: Any
) -> None:
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    provision(app, carol)
    start = datetime.now(UTC)
    notes = ['lunch, "the good one"\nthanks', '=HYPERLINK("http://evil")']
    ids = []
    for note in notes:
        response = client.post(
            "/api/wallet/transfer",
            json={"recipient_id": str(bob), "amount": "2.5", "note": note},
            headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
        )
        ids.append(response.get_json()["transaction_id"])
    wait_settled(db, ids)

    header, *rows = _rows(_statement(client, alice))
    assert header == [
        "date",
        "kind",
        "counterparty",
        "note",
        "amount",
        "balance_after",
        "status",
        "tx_hash",
    ]
    assert [r[1:] for r in rows] == [
        ["reward", "platform", "test funding", "10.000000", "10.000000", "completed", ""],
        ["transfer", str(bob), notes[0], "-2.500000", "7.500000", "completed", ""],
        ["transfer", str(bob), "'" + notes[1], "-2.500000", "5.000000", "completed", ""],
    ]
    received = _rows(_statement(client, bob, **{"from": start.isoformat()}))[1:]
    assert [(r[1], r[2], r[4], r[5]) for r in received] == [
        ("transfer", str(alice), "2.500000", "2.500000"),
        ("transfer", str(alice), "2.500000", "5.000000"),
    ]
    # the period: only what was accepted before `to`, nothing of anyone else's
    assert _rows(_statement(client, alice, to=start.isoformat()))[1:] == [rows[0]]
    assert _rows(_statement(client, carol)) == [header]


@pytest.mark.parametrize(
    "query",
    [
        {"from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"},
        {"from": "yesterday"},
        {"to": "2026-13-01T00:00:00Z"},
    ],
)
def test_a_bad_period_is_a_validation_error(client: Any, query: dict[str, str]) -> None:
    response = _statement(client, uuid.uuid4(), **query)
    assert response.status_code == 422 and response.get_json()["code"] == "validation_error"


def test_a_statement_of_100000_rows_streams_every_row_in_order(
    app: Any, client: Any, db: Any, owner_db: Any
) -> None:
    """100,000 completed transfers back and forth between two wallets, written directly (the
    pipeline would take minutes): balances and entries stay consistent, so `ledger check`
    still passes for them."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "1")
    provision(app, bob)
    a, b = wallet(db, alice).id, wallet(db, bob).id
    n = 100_000
    start = datetime.now(UTC) + timedelta(seconds=1)
    with db.transaction() as session:
        session.execute(
            text(
                """
                INSERT INTO transactions (id, kind, status, debit_wallet_id, credit_wallet_id,
                                          amount, seq, shard, note, created_at, completed_at)
                SELECT gen_random_uuid(), 'transfer', 'completed',
                       CASE WHEN i % 2 = 1 THEN CAST(:a AS uuid) ELSE CAST(:b AS uuid) END,
                       CASE WHEN i % 2 = 1 THEN CAST(:b AS uuid) ELSE CAST(:a AS uuid) END,
                       1, (i + 1) / 2, 0, 'n' || i,
                       CAST(:start AS timestamptz) + i * interval '1 millisecond',
                       CAST(:start AS timestamptz) + i * interval '1 millisecond'
                  FROM generate_series(1, :n) AS i
                """
            ),
            {"a": a, "b": b, "start": start, "n": n},
        )
    # Analyzed as autovacuum would soon, before the entries are written: each entry's foreign-key
    # check may otherwise run a plan this database session cached while `transactions` was
    # analyzed nearly empty, a scan of the whole table per check (in CI: over 300 s for these
    # 200,000 checks; the same on a probe table, 20,000 rows: 6.8 s, and 0.1 s analyzed first).
    with owner_db.transaction() as session:
        session.execute(text("ANALYZE transactions"))
    with db.transaction() as session:
        session.execute(
            text(
                """
                INSERT INTO ledger_entries (transaction_id, wallet_id, amount, balance_after)
                SELECT t.id, p.wallet_id, p.amount, p.balance_after
                  FROM transactions t
                 CROSS JOIN LATERAL (VALUES
                       (t.debit_wallet_id, -1, 0),  -- 1 token goes back and forth
                       (t.credit_wallet_id, 1, 1)) AS p(wallet_id, amount, balance_after)
                 WHERE t.debit_wallet_id IN (CAST(:a AS uuid), CAST(:b AS uuid))
                   AND t.created_at >= CAST(:start AS timestamptz)
                 ORDER BY t.created_at
                """
            ),
            {"a": a, "b": b, "start": start},
        )
        session.execute(
            text(
                "UPDATE wallets SET settled_seq = :half WHERE id IN (CAST(:a AS uuid),"
                " CAST(:b AS uuid))"
            ),
            {"a": a, "b": b, "half": n // 2},
        )
        session.execute(
            text(
                "UPDATE wallet_counters SET next_seq = :half WHERE wallet_id IN"
                " (CAST(:a AS uuid), CAST(:b AS uuid))"
            ),
            {"a": a, "b": b, "half": n // 2},
        )

    with owner_db.transaction() as session:  # as autovacuum would soon: plan on today's sizes
        session.execute(text("ANALYZE transactions, ledger_entries"))

    response = client.get(
        "/api/wallet/statement",
        # the rows are stamped 1 ms apart from `start`: the last ones lie in the future
        query_string={"from": start.isoformat(), "to": (start + timedelta(days=1)).isoformat()},
        headers=auth(alice),
        buffered=False,
    )
    assert response.is_streamed
    chunks = list(response.response)  # as the server writes them out
    assert len(chunks) > n // statement.BATCH  # read and written a batch at a time
    response.set_data(b"".join(c if isinstance(c, bytes) else c.encode() for c in chunks))
    header, *rows = _rows(response)
    assert len(rows) == n
    assert rows[0][1:] == ["transfer", str(bob), "n1", "-1.000000", "0.000000", "completed", ""]
    assert rows[1][1:] == ["transfer", str(bob), "n2", "1.000000", "1.000000", "completed", ""]
    assert rows[-1][3] == f"n{n}"
    assert sum(Decimal(r[4]) for r in rows) == 0
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    with db.transaction() as session:
        broken = [v for v in invariants.check(session) if v.subject in {str(a), str(b)}]
    assert broken == []
