"""Fraud holds end to end: settlement holds a suspicious debit (money kept reserved), admins are
told, list the queue and release or reject it; later debits settle against what remains."""

import dataclasses
import threading
import uuid
from decimal import Decimal
from typing import Any

import pytest
from solders.keypair import Keypair
from sqlalchemy import event, select, text

from app.models import AuditLog, Transaction
from app.services import settlement, withdrawals
from app.services.recording import shard_of
from tests.chain_support import token_account, token_balance
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


def _transfer(client, sender, recipient, amount) -> dict[str, Any]:
    response = post_transfer(client, sender, recipient, amount, Prefer="wait=10")
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _admin(app) -> uuid.UUID:
    admin = uuid.uuid4()
    app.extensions["wallet"].provisioner.wallet_id_for(admin, "admin")
    return admin


def _notifications(client, user, kind: str) -> list[dict[str, Any]]:
    items = client.get("/api/notifications?limit=100", headers=auth(user)).get_json()["items"]
    return [n for n in items if n["kind"] == kind]


def _audit(db, target, action: str) -> list[AuditLog]:
    with db.transaction() as session:
        rows = list(
            session.scalars(
                select(AuditLog).where(AuditLog.target == str(target), AuditLog.action == action)
            )
        )
        session.expunge_all()
        return rows


def _ledger_ok(app) -> None:
    result = app.test_cli_runner().invoke(args=["ledger", "check"])
    assert result.exit_code == 0, result.output


def _available(client, user) -> str:
    return str(
        client.get("/api/wallet", headers=auth(user)).get_json()["wallet"]["available_balance"]
    )


def test_a_large_transfer_to_a_new_recipient_is_held_until_an_admin_releases_it(
    app, client, db, wiring
) -> None:
    alice, bob, carol = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    admin = _admin(app)
    fund(app, alice, "20000")
    provision(app, bob)
    provision(app, carol)

    held = _transfer(client, alice, bob, "12000")
    tx_id = held["transaction_id"]
    assert (held["status"], held["failure_reason"]) == ("held", "new_recipient_large_amount")
    detail = client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(alice)).get_json()
    assert (detail["status"], detail["failure_reason"]) == ("held", "new_recipient_large_amount")
    assert detail["balance_after"] is None and entries_of(db, tx_id) == []
    # the balance is untouched, but the held money is not available
    assert balance(db, alice) == Decimal("20000") and balance(db, bob) == Decimal(0)
    assert _available(client, alice) == "8000.000000"
    assert (wallet(db, alice).held, wallet(db, alice).reserved) == (12000, 12000)
    _ledger_ok(app)

    # later debits settle against what remains
    assert _transfer(client, alice, carol, "3000")["status"] == "completed"
    [needs_held_money] = record_unchecked(app, alice, carol, [Decimal("6000")])
    wiring.queue.kick_settlement(
        shard_of(wallet(db, alice).id, wiring.config.settlement_shards), force=True
    )
    wait_settled(db, [needs_held_money])
    with db.transaction() as session:
        failed = session.get(Transaction, needs_held_money)
        assert (failed.status, failed.failure_reason) == ("failed", "insufficient_balance")
    assert balance(db, alice) == Decimal("17000") and _available(client, alice) == "5000.000000"

    # the sender and every admin were told; settlement audited the hold
    [told] = _notifications(client, alice, "transfer_held")
    assert told["transaction_id"] == tx_id and told["data"]["failure_reason"] == (
        "new_recipient_large_amount"
    )
    [alert] = [
        n for n in _notifications(client, admin, "transaction_held") if n["transaction_id"] == tx_id
    ]
    assert alert["amount"] == "12000.000000"
    assert alert["data"]["reason"] == "new_recipient_large_amount"
    assert alert["data"]["debit_user_id"] == str(alice)
    assert _audit(db, tx_id, "transfer.held")[0].details["reason"] == "new_recipient_large_amount"

    # the review queue lists it
    queue = client.get(
        f"/api/admin/transactions?status=held&user_id={alice}", headers=auth(admin, "admin")
    )
    assert queue.status_code == 200
    [item] = queue.get_json()["items"]
    assert item["id"] == tx_id and item["status"] == "held" and item["kind"] == "transfer"
    assert item["amount"] == "12000.000000" and item["reason"] == "new_recipient_large_amount"
    assert (item["debit_user_id"], item["credit_user_id"]) == (str(alice), str(bob))
    assert item["created_at"]
    mine = client.get("/api/wallet/transactions?status=held", headers=auth(alice)).get_json()
    assert [i["id"] for i in mine["items"]] == [tx_id]

    # users cannot decide; admins release it
    release = f"/api/admin/transactions/{tx_id}/release"
    assert client.post(release, headers=auth(alice)).status_code == 403
    assert client.post(release, headers=auth(uuid.uuid4(), "service")).status_code == 403
    assert client.get("/api/admin/transactions", headers=auth(alice)).status_code == 403
    released = client.post(release, headers=auth(admin, "admin"))
    assert released.status_code == 200, released.get_json()
    assert (released.get_json()["status"], released.get_json()["reason"]) == ("completed", None)
    assert sorted(a for _, a in entries_of(db, tx_id)) == [Decimal("-12000"), Decimal("12000")]
    assert balance(db, alice) == Decimal("5000") and balance(db, bob) == Decimal("12000")
    assert (wallet(db, alice).held, wallet(db, alice).reserved) == (0, 0)
    assert _available(client, alice) == "5000.000000"
    detail = client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(bob)).get_json()
    assert (detail["status"], detail["balance_after"]) == ("completed", "12000.000000")
    assert [n["transaction_id"] for n in _notifications(client, bob, "transfer_received")] == [
        tx_id
    ]
    [audited] = _audit(db, tx_id, "admin.transaction_released")
    assert audited.actor_id == admin and audited.details["hold_reason"] == (
        "new_recipient_large_amount"
    )
    _ledger_ok(app)

    # deciding twice, or about something never held, is a conflict; unknown ids are not found
    again = client.post(release, headers=auth(admin, "admin"))
    assert (again.status_code, again.get_json()["code"]) == (409, "transaction_not_held")
    reject = client.post(f"/api/admin/transactions/{tx_id}/reject", headers=auth(admin, "admin"))
    assert (reject.status_code, reject.get_json()["code"]) == (409, "transaction_not_held")
    unknown = client.post(
        f"/api/admin/transactions/{uuid.uuid4()}/release", headers=auth(admin, "admin")
    )
    assert unknown.status_code == 404


def test_a_rejected_hold_fails_and_frees_its_reservation(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    admin = _admin(app)
    fund(app, alice, "10000")
    provision(app, bob)
    tx_id = _transfer(client, alice, bob, "10000")["transaction_id"]
    assert _available(client, alice) == "0.000000"

    rejected = client.post(f"/api/admin/transactions/{tx_id}/reject", headers=auth(admin, "admin"))
    assert rejected.status_code == 200, rejected.get_json()
    assert (rejected.get_json()["status"], rejected.get_json()["reason"]) == (
        "failed",
        "rejected",
    )
    with db.transaction() as session:
        tx = session.get(Transaction, uuid.UUID(tx_id))
        assert (tx.status, tx.failure_reason, tx.completed_at) == ("failed", "rejected", None)
    assert entries_of(db, tx_id) == []
    assert balance(db, alice) == Decimal("10000") and balance(db, bob) == Decimal(0)
    assert (wallet(db, alice).held, wallet(db, alice).reserved) == (0, 0)
    assert _available(client, alice) == "10000.000000"
    [told] = _notifications(client, alice, "transfer_failed")
    assert told["transaction_id"] == tx_id and told["data"]["failure_reason"] == "rejected"
    assert _audit(db, tx_id, "admin.transaction_rejected")[0].actor_id == admin
    again = client.post(f"/api/admin/transactions/{tx_id}/reject", headers=auth(admin, "admin"))
    assert again.status_code == 409
    _ledger_ok(app)


def test_an_amount_far_above_the_senders_own_history_is_held_as_unusual(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "1000")
    provision(app, bob)
    for _ in range(5):
        assert _transfer(client, alice, bob, "10")["status"] == "completed"
    assert _transfer(client, alice, bob, "100")["status"] == "completed"  # 10× the average
    unusual = _transfer(client, alice, bob, "260")  # the average is now 25: more than 10×
    assert (unusual["status"], unusual["failure_reason"]) == ("held", "unusual_amount")
    assert balance(db, alice) == Decimal("850") and _available(client, alice) == "590.000000"
    _ledger_ok(app)


def test_the_admin_list_filters_by_kind_and_user_and_pages_newest_first(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    ids = [_transfer(client, alice, bob, "1")["transaction_id"] for _ in range(3)]
    admin = auth(uuid.uuid4(), "admin")
    url = f"/api/admin/transactions?user_id={bob}&kind=transfer&limit=2"
    first = client.get(url, headers=admin).get_json()
    assert [i["id"] for i in first["items"]] == ids[::-1][:2]
    rest = client.get(f"{url}&cursor={first['next_cursor']}", headers=admin).get_json()
    assert [i["id"] for i in rest["items"]] == ids[:1] and rest["next_cursor"] is None
    rewards = client.get(f"/api/admin/transactions?user_id={alice}&kind=reward", headers=admin)
    assert [i["kind"] for i in rewards.get_json()["items"]] == ["reward"]
    nobody = client.get(f"/api/admin/transactions?user_id={uuid.uuid4()}", headers=admin)
    assert nobody.get_json() == {"items": [], "next_cursor": None}
    assert client.get("/api/admin/transactions?status=nope", headers=admin).status_code == 422


def test_a_released_withdrawal_is_debited_and_lands_on_chain(
    app, client, db, solana, wiring
) -> None:
    alice, bob, external = uuid.uuid4(), uuid.uuid4(), Keypair()
    fund(app, alice, "1000")
    provision(app, bob)
    token_account(solana, external.pubkey())
    with db.transaction() as session:
        session.execute(
            text("UPDATE wallets SET address = :a WHERE user_id = :u"),
            {"a": str(external.pubkey()), "u": alice},
        )
    for _ in range(5):
        assert _transfer(client, alice, bob, "10")["status"] == "completed"
    response = client.post(
        "/api/wallet/withdrawals",
        json={"amount": "200"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    )
    tx_id = response.get_json()["transaction_id"]
    wait_until(lambda: status_of(db, tx_id) == "held")
    [told] = _notifications(client, alice, "withdrawal_held")
    assert told["data"]["failure_reason"] == "unusual_amount"
    assert balance(db, alice) == Decimal("950") and _available(client, alice) == "750.000000"

    released = client.post(
        f"/api/admin/transactions/{tx_id}/release", headers=auth(_admin(app), "admin")
    )
    assert released.status_code == 200, released.get_json()
    assert (released.get_json()["status"], released.get_json()["stage"]) == ("pending", "on_chain")
    assert balance(db, alice) == Decimal("750") and wallet(db, alice).held == 0
    wait_until(lambda: token_balance(solana, external.pubkey()) == Decimal(200))
    solana.advance(33)
    assert withdrawals.process(wiring, app.extensions["wallet"].system, uuid.UUID(tx_id)) == (
        "completed"
    )
    assert status_of(db, tx_id) == "completed"
    _ledger_ok(app)


@pytest.mark.parametrize("decision", ["release", "reject"])
def test_an_admin_cannot_decide_a_hold_on_their_own_transaction(app, client, db, decision) -> None:
    """Four eyes: the sender and the recipient may hold the admin role too; neither may decide,
    and the refused attempt is audited. Another admin still can."""
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10000")
    provision(app, bob)
    tx_id = _transfer(client, alice, bob, "10000")["transaction_id"]
    url = f"/api/admin/transactions/{tx_id}/{decision}"
    for party in (alice, bob):
        refused = client.post(url, headers=auth(party, "admin"))
        assert refused.status_code == 403, refused.get_json()
        assert refused.mimetype == "application/problem+json"
        assert refused.get_json()["code"] == "own_transaction"
    assert status_of(db, tx_id) == "held"
    assert (wallet(db, alice).held, balance(db, bob)) == (10000, Decimal(0))
    audited = _audit(db, tx_id, "admin.decision_refused")
    assert sorted((str(a.actor_id), a.details["decision"]) for a in audited) == sorted(
        [(str(alice), decision), (str(bob), decision)]
    )
    assert _audit(db, tx_id, f"admin.transaction_{decision}ed") == []

    decided = client.post(url, headers=auth(_admin(app), "admin"))
    assert decided.status_code == 200, decided.get_json()
    assert status_of(db, tx_id) == ("completed" if decision == "release" else "failed")
    _ledger_ok(app)


def test_velocity_holds_are_exact_while_a_job_counts_a_senders_hour_only_near_the_limit(
    app, db, wiring
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    provision(app, bob)
    alice_wallet = wallet(db, alice).id
    # four batches of two in one job; the fifth debit of the hour is the last one allowed
    job = dataclasses.replace(
        wiring, config=wiring.config.replace(fraud_velocity_count=5, settlement_batch_size=2)
    )
    shard = shard_of(alice_wallet, job.config.settlement_shards)
    wait_until(lambda: shard_idle(db, shard))
    sent = record_unchecked(app, alice, bob, [Decimal(1)] * 8)

    counted: list[bool] = []  # per batch: whether alice's last hour was counted
    here = threading.get_ident()

    def spy(_conn, _cursor, statement, parameters, _context, _many) -> None:
        if threading.get_ident() == here and "count_hour" in statement:
            ids, flags = parameters["ids"], parameters["count_hour"]
            counted.extend(f for i, f in zip(ids, flags, strict=True) if i == alice_wallet)

    event.listen(db.engine, "before_cursor_execute", spy)
    try:
        while settlement.run_shard(job, shard).settled == 0:  # until this thread gets the shard
            assert status_of(db, sent[0]) == "pending"
    finally:
        event.remove(db.engine, "before_cursor_execute", spy)

    with db.transaction() as session:
        outcomes = [
            (t.status, t.failure_reason)
            for t in session.scalars(
                select(Transaction).where(Transaction.id.in_(sent)).order_by(Transaction.seq)
            )
        ]
    assert outcomes == [("completed", None)] * 5 + [("held", "velocity_count")] * 3
    # counted when first seen and again near the limit, not in the batch that stayed far from it
    assert counted == [True, False, True, True]
    assert balance(db, alice) == Decimal("95") and balance(db, bob) == Decimal("5")
    _ledger_ok(app)
