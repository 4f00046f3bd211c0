"""Transfers end to end: HTTP → PENDING → real Celery worker → COMPLETED/FAILED."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.advisory_locks import Namespace
from app.domain.transactions import Kind
from app.models import LedgerEntry, Transaction
from app.services import settlement
from app.services.recording import Line, Submission, record, shard_of
from tests.support import (
    auth,
    balance,
    entries_of,
    fund,
    post_transfer,
    provision,
    record_unchecked,
    shard_idle,
    status_of,
    wait_settled,
    wait_until,
    wallet,
)

pytestmark = pytest.mark.usefixtures("worker")


def test_transfer_settles_with_two_entries_and_both_balances_move(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    provision(app, bob)

    response = post_transfer(client, alice, bob, "30.25")
    assert response.status_code == 202
    body = response.get_json()
    assert body == {
        "success": True,
        "transaction_id": body["transaction_id"],
        "status": "pending",
        "balance_after": None,
    }
    wait_settled(db, [body["transaction_id"]])

    assert balance(db, alice) == Decimal("69.75")
    assert balance(db, bob) == Decimal("30.25")
    postings = entries_of(db, body["transaction_id"])
    assert sorted(a for _, a in postings) == [Decimal("-30.25"), Decimal("30.25")]
    detail = client.get(f"/api/wallet/transactions/{body['transaction_id']}", headers=auth(alice))
    assert detail.get_json()["status"] == "completed"
    assert detail.get_json()["balance_after"] == "69.750000"
    assert detail.get_json()["amount"] == "-30.250000"
    assert detail.get_json()["completed_at"] is not None


def test_prefer_wait_answers_the_settled_state_synchronously(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "50")
    provision(app, bob)
    response = post_transfer(client, alice, bob, 20, Prefer="wait=5")
    assert response.status_code == 200
    assert response.headers["Preference-Applied"] == "wait=5"
    body = response.get_json()
    assert body["success"] is True
    assert body["status"] == "completed"
    assert body["balance_after"] == "30.000000"


def test_histories_show_amounts_signed_from_each_side(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    tx_id = post_transfer(client, alice, bob, "4", Prefer="wait=5").get_json()["transaction_id"]
    sent = client.get("/api/wallet", headers=auth(alice)).get_json()["transaction_history"]
    received = client.get("/api/wallet", headers=auth(bob)).get_json()["transaction_history"]
    assert [(i["id"], i["type"], i["amount"]) for i in sent][0] == (tx_id, "transfer", "-4.000000")
    assert [(i["id"], i["type"], i["amount"]) for i in received] == [
        (tx_id, "transfer", "4.000000")
    ]
    assert sent[1]["type"] == "reward" and sent[1]["amount"] == "10.000000"


def test_transfer_beyond_available_balance_is_refused_and_records_nothing(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    response = post_transfer(client, alice, bob, "10.000001")
    assert response.status_code == 422
    assert response.get_json()["code"] == "insufficient_balance"
    assert response.get_json()["available_balance"] == "10.000000"
    with db.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.debit_wallet_id == wallet(db, alice).id)
        )
    assert count == 0


def test_pending_debits_count_against_the_available_balance(app, client, db, wiring) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    shard = shard_of(wallet(db, alice).id, wiring.config.settlement_shards)
    with db.engine.connect() as hold:  # keep settlement off alice's shard
        hold.execute(text("SELECT pg_advisory_lock(7301, :s)"), {"s": shard})
        assert post_transfer(client, alice, bob, "6").status_code == 202
        overview = client.get("/api/wallet", headers=auth(alice)).get_json()["wallet"]
        assert overview["balance"] == "10.000000"
        assert overview["available_balance"] == "4.000000"
        assert post_transfer(client, alice, bob, "5").get_json()["code"] == "insufficient_balance"
        hold.execute(text("SELECT pg_advisory_unlock(7301, :s)"), {"s": shard})
        hold.commit()


def test_insufficient_balance_at_settlement_fails_and_leaves_balances_unchanged(app, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "5")
    [tx_id] = record_unchecked(app, alice, bob, [Decimal("8")])
    wiring = app.extensions["wallet"]
    wiring.queue.kick_settlement(
        shard_of(wallet(db, alice).id, wiring.config.settlement_shards), force=True
    )
    wait_settled(db, [tx_id])
    with db.transaction() as session:
        tx = session.get(Transaction, tx_id)
        assert (tx.status, tx.failure_reason) == ("failed", "insufficient_balance")
    assert balance(db, alice) == Decimal("5") and balance(db, bob) == Decimal("0")
    assert wallet(db, alice).reserved == Decimal("0")
    assert entries_of(db, tx_id) == []


def test_two_hundred_interleaved_transfers_settle_in_seq_order_and_only_the_later_fail(
    app, db, wiring
) -> None:
    sender = uuid.uuid4()
    recipients = [uuid.uuid4() for _ in range(5)]
    fund(app, sender, "120")
    ids: list[uuid.UUID] = []
    for batch in range(40):  # interleave recipients; 200 transfers of 1
        ids += record_unchecked(app, sender, recipients[batch % 5], [Decimal(1)] * 5)
    shard = shard_of(wallet(db, sender).id, wiring.config.settlement_shards)
    for _ in range(8):  # duplicate jobs race on the 4 worker threads
        wiring.queue.kick_settlement(shard, force=True)
    wait_settled(db, ids, timeout=60)

    with db.transaction() as session:
        rows = session.execute(
            select(Transaction.seq, Transaction.status, Transaction.failure_reason)
            .where(Transaction.id.in_(ids))
            .order_by(Transaction.seq)
        ).all()
    statuses = [r.status for r in rows]
    assert statuses == ["completed"] * 120 + ["failed"] * 80
    assert {r.failure_reason for r in rows[120:]} == {"insufficient_balance"}
    assert balance(db, sender) == Decimal(0)
    assert sum(balance(db, r) for r in recipients) == Decimal(120)


def test_opposite_transfers_between_two_users_all_complete_without_deadlock(
    app, client, db
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    fund(app, bob, "100")

    def send(i: int) -> str:
        sender, recipient = (alice, bob) if i % 2 else (bob, alice)
        with app.test_client() as c:
            response = post_transfer(c, sender, recipient, "1")
            assert response.status_code == 202, response.get_json()
            return str(response.get_json()["transaction_id"])

    with ThreadPoolExecutor(max_workers=16) as pool:
        ids = list(pool.map(send, range(200)))
    wait_settled(db, ids, timeout=60)
    assert {status_of(db, i) for i in ids} == {"completed"}
    assert balance(db, alice) == Decimal(100) and balance(db, bob) == Decimal(100)


def test_a_shard_whose_last_batch_died_settles_wallet_by_wallet_next(app, db, wiring) -> None:
    """A worker killed mid-batch leaves its shard marked (`unclean_runs` 1, committed with the
    batch's claim, before it wrote anything): the next run settles that shard wallet by wallet,
    counting an attempt on each wallet's next transaction, and clears the mark."""
    from app.services import settlement

    sender, recipient = uuid.uuid4(), uuid.uuid4()
    fund(app, sender, "5")
    shard = shard_of(wallet(db, sender).id, wiring.config.settlement_shards)
    # Hold the shard as a job would, so no worker job settles it while the crash is staged.
    with db.engine.connect() as holder:
        holder.execute(
            text("SELECT pg_advisory_lock(:ns, :shard)"),
            {"ns": Namespace.SETTLEMENT_SHARD, "shard": shard},
        )
        holder.commit()
        with db.transaction() as session:
            session.execute(
                text(
                    "INSERT INTO settlement_shards (shard, unclean_runs) VALUES (:shard, 1)"
                    " ON CONFLICT (shard) DO UPDATE SET unclean_runs = 1"
                ),
                {"shard": shard},
            )
        [tx] = record_unchecked(app, sender, recipient, [Decimal(2)])
        holder.execute(
            text("SELECT pg_advisory_unlock(:ns, :shard)"),
            {"ns": Namespace.SETTLEMENT_SHARD, "shard": shard},
        )
        holder.commit()

    settlement.run_shard(wiring, shard)  # a worker job may get there first: the same path
    wait_settled(db, [tx])
    with db.transaction() as session:
        settled = session.get(Transaction, tx)
        assert (settled.status, settled.attempts) == ("completed", 1)
        marked = session.execute(
            text("SELECT unclean_runs FROM settlement_shards WHERE shard = :shard"),
            {"shard": shard},
        ).scalar_one()
    assert marked == 0
    assert balance(db, sender) == Decimal(3) and balance(db, recipient) == Decimal(2)


def test_a_redelivered_or_duplicated_settlement_task_changes_nothing(
    app, client, db, wiring
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    tx_id = post_transfer(client, alice, bob, "3", Prefer="wait=5").get_json()["transaction_id"]
    shard = shard_of(wallet(db, alice).id, wiring.config.settlement_shards)
    with db.transaction() as session:
        before = session.scalar(select(func.count()).select_from(LedgerEntry))
    for _ in range(5):
        wiring.queue.send("settlement.settle_shard", shard)
    from app.services import settlement

    settlement.run_shard(wiring, shard)  # and once more in this thread, as a redelivery would
    with db.transaction() as session:
        after = session.scalar(select(func.count()).select_from(LedgerEntry))
    assert after == before
    assert balance(db, alice) == Decimal(7) and balance(db, bob) == Decimal(3)
    assert len(entries_of(db, tx_id)) == 2


def test_sweeper_completes_a_transfer_whose_enqueue_was_lost(app, config, db, wiring) -> None:
    from app import create_app

    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    # An API whose broker is unreachable (its rate limiter on another Redis that is up): the
    # request still succeeds, nothing is enqueued.
    offline = create_app(
        config.replace(redis_url="redis://127.0.0.1:1/0", ratelimit_storage_url=config.redis_url)
    )
    response = post_transfer(offline.test_client(), alice, bob, "2")
    assert response.status_code == 202
    tx_id = response.get_json()["transaction_id"]
    assert status_of(db, tx_id) == "pending"
    # The broker is back: beat fires the sweeper, which re-enqueues stale pending work (here
    # made stale by moving its creation back instead of waiting SWEEPER_STALE_SECONDS).
    with db.transaction() as session:
        session.execute(
            text(
                "UPDATE transactions SET created_at = created_at - make_interval(secs => :age)"
                " WHERE id = :id"
            ),
            {"age": config.sweeper_stale_seconds + 1, "id": tx_id},
        )
    wiring.queue.send("settlement.sweep")
    wait_settled(db, [tx_id])
    assert status_of(db, tx_id) == "completed"
    assert balance(db, bob) == Decimal(2)


def test_a_failed_connection_checkout_for_a_single_statement_is_unavailable() -> None:
    """Found by the chaos suite: a transfer whose pool checkout failed (PostgreSQL restarting)
    was answered 500 instead of 503."""
    from app.db import Database
    from app.domain.errors import ServiceUnavailableError

    offline = Database("postgresql+psycopg://x@127.0.0.1:1/none")
    with pytest.raises(ServiceUnavailableError), offline.cursor():
        pass
    offline.dispose()


def test_an_unreachable_database_answers_503_to_a_transfer(config) -> None:
    from app import create_app

    offline = create_app(config.replace(database_url="postgresql+psycopg://x@127.0.0.1:1/none"))
    response = post_transfer(offline.test_client(), uuid.uuid4(), uuid.uuid4(), "1")
    assert response.status_code == 503
    assert response.get_json()["code"] == "service_unavailable"


def _say_running(db: Any, shard: int) -> None:
    """What a job says when it takes `shard` (`run_shard`), for a minute."""
    with db.engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO settlement_shards (shard, running_until)"
                " VALUES (:shard, now() + interval '1 minute')"
                " ON CONFLICT (shard) DO UPDATE SET running_until = EXCLUDED.running_until"
            ),
            {"shard": shard},
        )


def _running_until(db: Any, shard: int) -> Any:
    with db.engine.begin() as conn:
        return conn.scalar(
            text("SELECT running_until FROM settlement_shards WHERE shard = :shard"),
            {"shard": shard},
        )


def _kicks(wiring: Any, monkeypatch: Any) -> list[int]:
    """The shards kicked from now on (the kicks still happen)."""
    kicked: list[int] = []
    original = wiring.queue.kick_settlement

    def kick(shard: int, *, force: bool = False) -> None:
        kicked.append(shard)
        original(shard, force=force)

    monkeypatch.setattr(wiring.queue, "kick_settlement", kick)
    return kicked


def test_a_transfer_accepted_while_a_job_runs_on_its_shard_is_left_to_that_job(
    app, client, db, wiring, monkeypatch
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    shard = shard_of(wallet(db, alice).id, wiring.config.settlement_shards)
    wait_until(lambda: shard_idle(db, shard))
    kicked = _kicks(wiring, monkeypatch)
    _say_running(db, shard)  # as a job on the shard does when it takes it

    left = post_transfer(client, alice, bob, "3")
    assert left.status_code == 202 and kicked == []
    assert status_of(db, left.get_json()["transaction_id"]) == "pending"
    # That job settles it and ends its run; the next transfer kicks again.
    assert settlement.run_shard(wiring, shard).settled == 1
    assert status_of(db, left.get_json()["transaction_id"]) == "completed"
    assert _running_until(db, shard) is None
    kicked_one = post_transfer(client, alice, bob, "2")
    assert kicked_one.status_code == 202 and kicked == [shard]
    wait_settled(db, [kicked_one.get_json()["transaction_id"]])
    assert balance(db, alice) == Decimal(5) and balance(db, bob) == Decimal(5)


def test_a_job_ends_its_run_after_the_accepts_that_saw_it_running_and_then_settles_them(
    app, db, wiring
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    bob_wallet = provision(app, bob)
    alice_wallet = wallet(db, alice).id
    shard = shard_of(alice_wallet, wiring.config.settlement_shards)
    wait_until(lambda: shard_idle(db, shard))
    _say_running(db, shard)
    reports: list[settlement.RunReport] = []
    job = threading.Thread(target=lambda: reports.append(settlement.run_shard(wiring, shard)))

    # An accept that sees the job running, not yet committed when the job finds nothing to do.
    with db.engine.connect() as accept:
        transaction = accept.begin()
        [tx_id] = record(
            accept,
            Submission(Kind.TRANSFER, [Line(bob_wallet, Decimal(4))], alice,
                       debit_wallet_id=alice_wallet),
            wiring.config.settlement_shards,
        ).transaction_ids  # fmt: skip
        seen = accept.scalar(text("SELECT settlement_running(:shard)"), {"shard": shard})
        assert seen is True
        job.start()
        job.join(1.0)
        assert job.is_alive()  # its run cannot end before this accept commits
        transaction.commit()
    job.join(30)

    assert not job.is_alive() and reports[0].settled == 1
    assert status_of(db, tx_id) == "completed"
    assert balance(db, alice) == Decimal(6) and balance(db, bob) == Decimal(4)
    assert _running_until(db, shard) is None


def test_a_run_that_fails_hands_its_shard_to_a_fresh_job(app, db, wiring, monkeypatch) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    shard = shard_of(wallet(db, alice).id, wiring.config.settlement_shards)
    wait_until(lambda: shard_idle(db, shard))
    [tx_id] = record_unchecked(app, alice, bob, [Decimal(3)])
    kicked = _kicks(wiring, monkeypatch)
    here, settle_next = threading.get_ident(), settlement._settle_next

    def broken_here(*args: Any) -> Any:  # the worker's own jobs are unaffected
        if threading.get_ident() == here:
            raise RuntimeError("a bug in a batch")
        return settle_next(*args)

    monkeypatch.setattr(settlement, "_settle_next", broken_here)
    with pytest.raises(RuntimeError):
        settlement.run_shard(wiring, shard)

    # accepts that saw the run did not kick, so the failed run kicked for them
    assert kicked == [shard] and _running_until(db, shard) is None
    wait_settled(db, [tx_id])
    assert status_of(db, tx_id) == "completed" and balance(db, bob) == Decimal(3)
