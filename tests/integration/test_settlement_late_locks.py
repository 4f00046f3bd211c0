"""Settlement decides on wallets read without a lock and locks them only to write: what other
jobs commit in between is kept, and a change the decisions did not allow for rolls back."""

import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from app.models import LedgerEntry
from app.services import batch_writes, settlement
from app.services.invariants import check
from app.services.recording import shard_of
from tests.support import balance, fund, provision, record_unchecked, status_of

pytestmark = pytest.mark.usefixtures("worker")


def _users_in_two_shards(app: Any, shards: int) -> tuple[uuid.UUID, uuid.UUID, int, int]:
    first = uuid.uuid4()
    first_shard = shard_of(provision(app, first), shards)
    while True:
        second = uuid.uuid4()
        second_shard = shard_of(provision(app, second), shards)
        if second_shard != first_shard:
            return first, second, first_shard, second_shard


def _before_the_lock(monkeypatch: Any, action: Any) -> None:
    """Run `action` once, after the batch has decided and written its statuses, right before
    it locks the wallets."""
    original, done = batch_writes._lock, threading.Event()

    def hooked(*args: Any) -> Any:
        if not done.is_set():
            done.set()
            action()
        return original(*args)

    monkeypatch.setattr(batch_writes, "_lock", hooked)


def _settle_in_another_job(wiring: Any, shard: int) -> None:
    """Settle `shard` in its own thread and connection, committed before this returns."""
    worker = threading.Thread(target=settlement.run_shard, args=(wiring, shard))
    worker.start()
    worker.join(30)


def test_a_credit_committed_between_the_read_and_the_lock_is_kept_and_entries_chain_exactly(
    app: Any, db: Any, wiring: Any, monkeypatch: Any
) -> None:
    alice, carol, alice_shard, carol_shard = _users_in_two_shards(
        app, wiring.config.settlement_shards
    )
    bob = uuid.uuid4()
    fund(app, alice, "10")
    fund(app, carol, "10")
    provision(app, bob)
    [to_bob] = record_unchecked(app, alice, bob, [Decimal(3)])
    [also_to_bob] = record_unchecked(app, carol, bob, [Decimal(4)])

    _before_the_lock(monkeypatch, lambda: _settle_in_another_job(wiring, carol_shard))
    settlement.run_shard(wiring, alice_shard)

    assert status_of(db, to_bob) == "completed" and status_of(db, also_to_bob) == "completed"
    assert (balance(db, alice), balance(db, carol), balance(db, bob)) == (7, 6, 7)
    with db.transaction() as session:
        bob_wallet = provision(app, bob)
        chain = session.execute(
            select(LedgerEntry.amount, LedgerEntry.balance_after)
            .where(LedgerEntry.wallet_id == bob_wallet)
            .order_by(LedgerEntry.id)
        ).all()
        assert [(r.amount, r.balance_after) for r in chain] == [(4, 4), (3, 7)]
        assert check(session) == []


def test_a_wallet_with_less_money_at_the_lock_rolls_the_batch_back_and_it_is_decided_again(
    app: Any, db: Any, wiring: Any, monkeypatch: Any, caplog: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    alice_wallet = provision(app, alice)
    [tx] = record_unchecked(app, alice, bob, [Decimal(3)])

    def shrink(delta: int) -> None:
        with db.engine.begin() as conn:
            conn.execute(
                text("UPDATE wallets SET balance = balance + :d WHERE id = :id"),
                {"d": delta, "id": alice_wallet},
            )

    # Not something the system does (only the wallet's own shard job debits it): the batch
    # must notice rather than write balances decided on money that is gone.
    _before_the_lock(monkeypatch, lambda: shrink(-8))
    settlement.run_shard(wiring, shard_of(alice_wallet, wiring.config.settlement_shards))

    assert "concurrent change while settling shard" in caplog.text
    assert status_of(db, tx) == "failed"
    assert (balance(db, alice), balance(db, bob)) == (2, 0)
    shrink(8)  # give the test database its ledger back


def test_a_recipient_debited_by_its_own_shard_between_the_read_and_the_lock_does_not_roll_back(
    app: Any, db: Any, wiring: Any, monkeypatch: Any, caplog: Any
) -> None:
    alice, carol, alice_shard, carol_shard = _users_in_two_shards(
        app, wiring.config.settlement_shards
    )
    dave = uuid.uuid4()
    fund(app, alice, "10")
    fund(app, carol, "10")
    provision(app, dave)
    [to_carol] = record_unchecked(app, alice, carol, [Decimal(3)])
    [carol_pays] = record_unchecked(app, carol, dave, [Decimal(6)])

    # carol's own shard settles her debit: her available money shrinks meanwhile
    _before_the_lock(monkeypatch, lambda: _settle_in_another_job(wiring, carol_shard))
    settlement.run_shard(wiring, alice_shard)

    # A credit never depends on the recipient's balance: the batch must not be rolled back
    # (that would send the shard wallet by wallet and count attempts against good transfers).
    assert "concurrent change while settling shard" not in caplog.text
    assert status_of(db, to_carol) == "completed" and status_of(db, carol_pays) == "completed"
    assert (balance(db, alice), balance(db, carol), balance(db, dave)) == (7, 7, 6)
    with db.transaction() as session:
        assert check(session) == []
