"""The thin request path: one database statement to accept a request or answer a read, and
accepting never waits for settlement (issue 9)."""

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from sqlalchemy import select, text

from app.db import Database
from app.domain.errors import WalletNotFoundError
from app.domain.transactions import Kind
from app.models import Transaction
from app.services import recording
from app.services.recording import Line, Submission
from tests.servers import servers
from tests.support import auth, balance, fund, post_transfer, provision, wait_settled, wait_until

pytestmark = pytest.mark.usefixtures("worker")
PING = "SELECT 1"


@contextmanager
def statements(_db: Any) -> Iterator[list[str]]:
    """The SQL statements this thread sends to PostgreSQL while the block runs, counted at the
    driver (every statement, whether it came through the ORM, Core or a raw cursor, is one
    `psycopg.Cursor.execute`). The pool's ping of a connection that sat idle (`SELECT 1`, see
    app/db.py) is the pool's upkeep, not the request's work, and is left out."""
    seen: list[str] = []
    me = threading.get_ident()
    original = psycopg.Cursor.execute

    def spy(cursor, query, *args, **kwargs):
        if threading.get_ident() == me and str(query) != PING:
            seen.append(str(query))
        return original(cursor, query, *args, **kwargs)

    psycopg.Cursor.execute = spy
    try:
        yield seen
    finally:
        psycopg.Cursor.execute = original


def test_accepting_a_transfer_its_replay_and_a_refusal_are_one_statement_each(
    app: Any, client: Any, db: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    client.get("/api/wallet", headers=auth(alice))  # alice is known to this process now

    with statements(db) as accepted:
        first = post_transfer(client, alice, bob, "4", key="one-trip")
    with statements(db) as replayed:
        again = post_transfer(client, alice, bob, "4", key="one-trip")
    with statements(db) as refused:
        too_much = post_transfer(client, alice, bob, "7")

    assert first.status_code == 202
    assert again.status_code == 202 and again.get_json() == first.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert too_much.status_code == 422
    assert too_much.get_json()["code"] == "insufficient_balance"
    assert too_much.get_json()["available_balance"] == "6.000000"
    assert [len(accepted), len(replayed), len(refused)] == [1, 1, 1]
    assert all("accept_transactions" in s for s in accepted + replayed + refused)


def test_reads_are_one_statement_each(app: Any, client: Any, db: Any) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    tx_id = post_transfer(client, alice, bob, "1").get_json()["transaction_id"]
    wait_settled(db, [tx_id])
    client.get("/api/wallet", headers=auth(alice))

    with statements(db) as overview:
        wallet = client.get("/api/wallet", headers=auth(alice))
    with statements(db) as one:
        detail = client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(alice))
    with statements(db) as page:
        listing = client.get("/api/wallet/transactions?type=transfer", headers=auth(alice))

    assert wallet.status_code == detail.status_code == listing.status_code == 200
    assert wallet.get_json()["wallet"]["balance"] == "9.000000"
    assert [t["id"] for t in wallet.get_json()["transaction_history"]][0] == tx_id
    assert detail.get_json()["status"] == "completed"
    assert [t["id"] for t in listing.get_json()["items"]] == [tx_id]
    assert [len(overview), len(one), len(page)] == [1, 1, 1]


def test_a_burst_of_requests_reuses_the_sessions_it_opened(db: Any) -> None:
    """A process opens at most its pool's size of PostgreSQL sessions and keeps them: a burst
    above the size waits for a connection instead of opening sessions it closes right after
    (each new session costs the server far more than a request, app/db.py)."""
    pool = Database(db.engine.url.render_as_string(hide_password=False), pool_size=3)

    def backend(_: int) -> int:
        with pool.cursor() as cur:
            row = cur.execute("SELECT pg_backend_pid(), pg_sleep(0.05)").fetchone()
        assert row is not None
        return int(row[0])

    try:
        with ThreadPoolExecutor(8) as burst:
            first = set(burst.map(backend, range(16)))
        with ThreadPoolExecutor(8) as burst:
            second = set(burst.map(backend, range(16)))
    finally:
        pool.dispose()
    assert len(first) == 3
    assert second == first


def test_a_transfer_is_accepted_while_settlement_holds_both_wallets_locked(
    app: Any, client: Any, db: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    wallets = [provision(app, alice), provision(app, bob)]
    answered = threading.Event()
    replies: list[Any] = []

    def submit() -> None:
        replies.append(post_transfer(app.test_client(), alice, bob, "3"))
        answered.set()

    # Exactly the lock a settlement batch takes on the wallets it settles, held open.
    with psycopg.connect(servers().url_for(servers().dbname).replace("+psycopg", "")) as conn:
        conn.execute(
            "SELECT id FROM wallets WHERE id = ANY(%s) ORDER BY id FOR NO KEY UPDATE",
            (wallets,),
        )
        threading.Thread(target=submit, daemon=True).start()
        accepted_under_lock = answered.wait(timeout=20)
        conn.rollback()
    assert accepted_under_lock, "the transfer waited for the settlement's wallet locks"
    assert replies[0].status_code == 202
    wait_settled(db, [replies[0].get_json()["transaction_id"]])
    assert (balance(db, alice), balance(db, bob)) == (Decimal(7), Decimal(3))


def test_two_hundred_concurrent_submits_from_one_wallet_never_overdraw_while_it_settles(
    app: Any, db: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "50")
    provision(app, bob)

    def submit(_: int) -> Any:
        return post_transfer(app.test_client(), alice, bob, "1")

    with ThreadPoolExecutor(max_workers=16) as pool:
        replies = list(pool.map(submit, range(200)))

    accepted = [r.get_json()["transaction_id"] for r in replies if r.status_code == 202]
    refused = [r.get_json()["code"] for r in replies if r.status_code != 202]
    assert len(accepted) == 50
    assert refused == ["insufficient_balance"] * 150
    wait_settled(db, accepted)
    with db.transaction() as session:
        rows = session.execute(
            select(Transaction.seq, Transaction.status).where(
                Transaction.id.in_([uuid.UUID(t) for t in accepted])
            )
        ).all()
    assert sorted(seq for seq, _ in rows) == list(range(1, 51))
    assert {status for _, status in rows} == {"completed"}
    assert (balance(db, alice), balance(db, bob)) == (Decimal(0), Decimal(50))
    check = app.test_cli_runner().invoke(args=["ledger", "check"])
    assert check.exit_code == 0, check.output


def test_the_wallet_overview_merges_both_sides_of_a_long_history_newest_first(
    app: Any, client: Any, db: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    fund(app, bob, "100")
    sent = [post_transfer(client, alice, bob, "1").get_json()["transaction_id"] for _ in range(15)]
    got = [post_transfer(client, bob, alice, "2").get_json()["transaction_id"] for _ in range(15)]
    wait_settled(db, sent + got)

    history = client.get("/api/wallet", headers=auth(alice)).get_json()["transaction_history"]

    with db.transaction() as session:
        newest = (
            session.execute(
                text(
                    "SELECT id::text FROM transactions WHERE id = ANY(CAST(:ids AS uuid[]))"
                    " ORDER BY created_at DESC, id DESC LIMIT 20"
                ),
                {"ids": sent + got},
            )
            .scalars()
            .all()
        )
    assert [t["id"] for t in history] == newest
    amounts = {t["id"]: t["amount"] for t in history}
    assert {amounts[t] for t in newest if t in sent} <= {"-1.000000"}
    assert {amounts[t] for t in newest if t in got} <= {"2.000000"}
    wait_until(lambda: balance(db, alice) == Decimal(115))


def test_a_wallet_named_directly_that_does_not_exist_is_refused_and_changes_nothing(
    app: Any, db: Any, user: Any
) -> None:
    """Transactions carry no foreign keys to wallets (migration 0016); accepting checks that a
    credit wallet the server names directly exists, for one line and for several."""
    fund(app, user, "5")
    payer, payee = provision(app, user), provision(app, uuid.uuid4())
    shards = app.extensions["wallet"].config.settlement_shards
    before = _submit_side(db, payer)
    for lines in (
        [Line(uuid.uuid4(), Decimal(1))],
        [Line(payee, Decimal(1)), Line(uuid.uuid4(), Decimal(1))],
    ):
        submission = Submission(Kind.TRANSFER, lines, initiator_id=user, debit_wallet_id=payer)
        with pytest.raises(WalletNotFoundError), db.transaction() as session:
            recording.record(session, submission, shards)

    assert _submit_side(db, payer) == before
    with db.transaction() as session:
        assert (
            session.scalars(
                select(Transaction.id).where(Transaction.debit_wallet_id == payer)
            ).all()
            == []
        )


def _submit_side(db: Any, wallet_id: Any) -> tuple[Any, ...]:
    with db.transaction() as session:
        row = session.execute(
            text("SELECT next_seq, reserved_total FROM wallet_counters WHERE wallet_id = :w"),
            {"w": wallet_id},
        ).one()
    return tuple(row)
