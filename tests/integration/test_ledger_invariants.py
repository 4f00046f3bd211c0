"""`flask ledger check`, `flask ledger mint`, and bounded settlement attempts."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session

from app.models import Transaction, Wallet
from app.services.invariants import check
from app.services.recording import shard_of
from tests.support import (
    balance,
    fund,
    provision,
    record_unchecked,
    wait_settled,
    wait_until,
    wallet,
)

pytestmark = pytest.mark.usefixtures("worker")


def test_ledger_check_passes_then_catches_a_hand_corrupted_balance(app, db) -> None:
    user = uuid.uuid4()
    fund(app, user, "3")
    runner = app.test_cli_runner()
    ok = runner.invoke(args=["ledger", "check"])
    assert ok.exit_code == 0, ok.output
    with db.transaction() as session:
        session.execute(
            text("UPDATE wallets SET balance = balance + 1 WHERE user_id = :u"), {"u": user}
        )
    try:
        broken = runner.invoke(args=["ledger", "check"])
        assert broken.exit_code == 1
        assert "balance_equals_entries" in broken.output
        assert str(wallet(db, user).id) in broken.output
        assert "wallets_total_issued_plus_deposited_minus_withdrawn" in broken.output
    finally:
        with db.transaction() as session:
            session.execute(
                text("UPDATE wallets SET balance = balance - 1 WHERE user_id = :u"), {"u": user}
            )
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0


def test_ledger_entries_cannot_be_changed_or_deleted_even_by_their_owner(app, owner_db) -> None:
    """The trigger, behind the privileges the app role lacks (test_app_role.py)."""
    user = uuid.uuid4()
    fund(app, user, "1")
    for statement in (
        "UPDATE ledger_entries SET amount = 0",
        "DELETE FROM ledger_entries",
        "TRUNCATE ledger_entries CASCADE",
    ):
        with pytest.raises(Exception, match="append-only"):
            with owner_db.transaction() as session:
                session.execute(text(statement))


def test_mint_credits_the_platform_wallet_from_the_issuance_account(
    app, db, system_wallets
) -> None:
    with db.transaction() as session:
        before = session.get(Wallet, system_wallets.platform()).balance
    result = app.test_cli_runner().invoke(args=["ledger", "mint", "250.5"])
    assert result.exit_code == 0, result.output
    tx_id = result.output.split()[1]
    wait_settled(db, [tx_id])
    with db.transaction() as session:
        assert session.get(Wallet, system_wallets.platform()).balance == before + Decimal("250.5")
        tx = session.get(Transaction, uuid.UUID(tx_id))
        assert (tx.kind, tx.status) == ("issuance", "completed")
    assert app.test_cli_runner().invoke(args=["ledger", "mint", "-1"]).exit_code != 0
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_a_poison_transaction_fails_after_bounded_attempts_instead_of_looping(
    app, db, wiring
) -> None:
    """A transaction whose settlement always errors (here: the recipient's balance would overflow
    NUMERIC(18,6)) ends FAILED `settlement_error`; the sender's later transactions still settle."""
    sender, whale, normal = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, sender, "2")
    provision(app, normal)
    whale_wallet = provision(app, whale)
    with db.transaction() as session:  # a balance at the top of the column's range
        session.execute(
            text("UPDATE wallets SET kind = 'external', balance = 999999999999 WHERE id = :w"),
            {"w": whale_wallet},
        )
    try:
        [poison] = record_unchecked(app, sender, whale, [Decimal(1)])
        [later] = record_unchecked(app, sender, normal, [Decimal(1)])
        shard = shard_of(wallet(db, sender).id, wiring.config.settlement_shards)

        def done() -> bool:
            wiring.queue.kick_settlement(shard, force=True)
            return _status(db, later) != "pending"

        wait_until(done, timeout=60, interval=0.3)
        with db.transaction() as session:
            failed = session.get(Transaction, poison)
            assert (failed.status, failed.failure_reason) == ("failed", "settlement_error")
            assert failed.attempts > wiring.config.settlement_max_attempts
        assert _status(db, later) == "completed"
        assert balance(db, sender) == Decimal(1) and balance(db, normal) == Decimal(1)
    finally:
        with db.transaction() as session:
            session.execute(
                text("UPDATE wallets SET balance = 0, kind = 'user' WHERE id = :w"),
                {"w": whale_wallet},
            )


def _status(db, tx_id) -> str:
    with db.transaction() as session:
        return str(session.get(Transaction, tx_id).status)


def test_ledger_check_catches_a_reservation_that_does_not_match_pending_debits(app, db) -> None:
    user = uuid.uuid4()
    fund(app, user, "3")
    runner = app.test_cli_runner()
    wallet_id = wallet(db, user).id
    with db.transaction() as session:
        session.execute(
            text(
                "UPDATE wallet_counters SET reserved_total = reserved_total + 5"
                " WHERE wallet_id = :w"
            ),
            {"w": wallet_id},
        )
    try:
        broken = runner.invoke(args=["ledger", "check"])
        assert broken.exit_code == 1
        assert "reserved_equals_pending_debits" in broken.output
        assert "reserved_within_balance" in broken.output
        assert str(wallet_id) in broken.output
    finally:
        with db.transaction() as session:
            session.execute(
                text(
                    "UPDATE wallet_counters SET reserved_total = reserved_total - 5"
                    " WHERE wallet_id = :w"
                ),
                {"w": wallet_id},
            )
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0


def test_ledger_check_catches_entries_that_are_not_their_transactions_sides(app, db) -> None:
    """Ledger entries have no foreign keys (migration 0019): `ledger check` says which entry
    names no transaction, no wallet, or a wallet that is not one of its transaction's sides."""
    user, stranger = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "2")
    stranger_wallet = provision(app, stranger)
    funded = wallet(db, user).id
    with Session(db.engine) as session:  # rolled back: entries cannot be deleted
        reward = session.scalar(
            text("SELECT transaction_id FROM ledger_entries WHERE wallet_id = :w"), {"w": funded}
        )
        made = {}
        for what, tx_id, wallet_id in (
            ("no such transaction", uuid.uuid4(), funded),
            ("no such wallet", reward, uuid.uuid4()),
            ("not a side of its transaction", reward, stranger_wallet),
        ):
            made[what] = session.scalar(
                text(
                    "INSERT INTO ledger_entries (transaction_id, wallet_id, amount, balance_after)"
                    " VALUES (:t, :w, 0, 0) RETURNING id"
                ),
                {"t": tx_id, "w": wallet_id},
            )
        found = {
            v.subject: v.detail
            for v in check(session)
            if v.rule == "entry_belongs_to_its_transaction"
        }
        session.rollback()
    assert found.keys() == {str(entry) for entry in made.values()}
    for what, entry in made.items():
        assert found[str(entry)].endswith(f": {what}")
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0
