"""Step-up confirmation: transfers and withdrawals at or above the step-up amount wait for the
connected wallet's signature, through the real stack (API, database function, worker)."""

from __future__ import annotations

import base64
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from solders.keypair import Keypair
from sqlalchemy import select, text

from app.models import AuditLog, Notification, Transaction, WalletCounters
from app.services import invariants, step_up
from tests.chain_support import token_account
from tests.servers import servers
from tests.support import (
    auth,
    balance,
    connect_by_signing,
    fund,
    provision,
    status_of,
    wait_settled,
    wait_until,
    wallet,
)

pytestmark = pytest.mark.usefixtures("worker")


def _settings(client: Any, user: uuid.UUID, body: dict[str, Any]) -> Any:
    return client.put("/api/wallet/settings", json=body, headers=auth(user))


def _transfer(
    client: Any, sender: uuid.UUID, recipient: uuid.UUID, amount: str, key: str = ""
) -> Any:
    return client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(recipient), "amount": amount},
        headers={**auth(sender), "Idempotency-Key": key or str(uuid.uuid4())},
    )


def _sign(keypair: Keypair, message: str) -> str:
    return base64.b64encode(bytes(keypair.sign_message(message.encode()))).decode()


def _confirm(client: Any, user: uuid.UUID, tx_id: str, signature: str) -> Any:
    return client.post(
        f"/api/wallet/transactions/{tx_id}/confirm",
        json={"signature": signature},
        headers=auth(user),
    )


def _available(client: Any, user: uuid.UUID) -> str:
    return str(
        client.get("/api/wallet", headers=auth(user)).get_json()["wallet"]["available_balance"]
    )


def _stepped_user(app: Any, client: Any, amount: str = "100", step_up_at: str = "50") -> Any:
    user = uuid.uuid4()
    fund(app, user, amount)
    owner, _, _ = connect_by_signing(client, user)
    settings = _settings(client, user, {"step_up_amount": step_up_at})
    assert settings.status_code == 200, settings.get_json()
    assert settings.get_json()["effective_step_up_amount"] == f"{Decimal(step_up_at):.6f}"
    return user, owner


def _violations_of(db: Any, *users: uuid.UUID) -> list[invariants.Violation]:
    ids = {str(wallet(db, u).id) for u in users}
    with db.transaction() as session:
        return [v for v in invariants.check(session) if v.subject in ids]


def test_a_transfer_at_the_step_up_amount_waits_for_the_signature_then_settles(
    app: Any, client: Any, db: Any
) -> None:
    alice, owner = _stepped_user(app, client)
    bob = uuid.uuid4()
    provision(app, bob)

    response = _transfer(client, alice, bob, "50")
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert (body["status"], body["stage"]) == ("pending", "awaiting_confirmation")
    message = body["confirmation"]["message"]
    for named in (
        "50.000000",
        f"user {bob}",
        body["transaction_id"],
        str(owner.pubkey()),
        "Nonce: ",
    ):
        assert named in message, (named, message)

    # reserved, not settled — and it holds back none of Alice's later (smaller) transfers
    assert _available(client, alice) == "50.000000"
    small = _transfer(client, alice, bob, "5").get_json()["transaction_id"]
    wait_settled(db, [small])
    assert status_of(db, small) == "completed"
    time.sleep(0.5)
    assert status_of(db, body["transaction_id"]) == "pending"
    assert balance(db, alice) == Decimal(95) and balance(db, bob) == Decimal(5)

    confirmed = _confirm(client, alice, body["transaction_id"], _sign(owner, message))
    assert confirmed.status_code == 202, confirmed.get_json()
    wait_settled(db, [body["transaction_id"]])
    assert status_of(db, body["transaction_id"]) == "completed"
    assert balance(db, alice) == Decimal(45) and balance(db, bob) == Decimal(55)
    again = _confirm(client, alice, body["transaction_id"], _sign(owner, message))
    assert again.status_code == 409 and again.get_json()["code"] == "not_awaiting_confirmation"
    assert _violations_of(db, alice, bob) == []


def test_below_the_step_up_amount_a_transfer_settles_as_before(
    app: Any, client: Any, db: Any
) -> None:
    alice, _ = _stepped_user(app, client)
    bob = uuid.uuid4()
    provision(app, bob)
    body = _transfer(client, alice, bob, "49.999999").get_json()
    assert "confirmation" not in body
    wait_settled(db, [body["transaction_id"]])
    assert status_of(db, body["transaction_id"]) == "completed"


def test_a_wrong_signature_is_refused_and_audited_and_the_transfer_still_waits(
    app: Any, client: Any, db: Any
) -> None:
    alice, owner = _stepped_user(app, client)
    bob = uuid.uuid4()
    provision(app, bob)
    body = _transfer(client, alice, bob, "60").get_json()
    tx_id, message = body["transaction_id"], body["confirmation"]["message"]

    for signature in (
        _sign(Keypair(), message),  # someone else's wallet
        _sign(owner, message.replace("60.000000", "6.000000")),  # another message
        "not a signature",
        "",  # none at all
    ):
        refused = _confirm(client, alice, tx_id, signature)
        assert refused.status_code == 400, refused.get_json()
        assert refused.get_json()["code"] == "invalid_signature"
    with db.transaction() as session:
        audited = session.scalars(
            select(AuditLog.action).where(
                AuditLog.target == tx_id, AuditLog.action == "transaction.confirmation_refused"
            )
        ).all()
    assert len(audited) == 4
    # Mallory cannot confirm Alice's transaction even with the right signature
    mallory = uuid.uuid4()
    assert _confirm(client, mallory, tx_id, _sign(owner, message)).status_code == 404
    assert status_of(db, tx_id) == "pending"
    assert _confirm(client, alice, tx_id, _sign(owner, message)).status_code == 202
    wait_settled(db, [tx_id])
    assert balance(db, bob) == Decimal(60)


def test_an_unconfirmed_transfer_fails_after_its_window_and_releases_the_reservation(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    alice, owner = _stepped_user(app, client)
    bob = uuid.uuid4()
    provision(app, bob)
    body = _transfer(client, alice, bob, "70").get_json()
    tx_id, message = body["transaction_id"], body["confirmation"]["message"]
    assert _available(client, alice) == "30.000000"
    with db.transaction() as session:  # ten minutes later
        session.execute(
            text("UPDATE transactions SET expires_at = now() - interval '1 second' WHERE id = :id"),
            {"id": tx_id},
        )
    late = _confirm(client, alice, tx_id, _sign(owner, message))
    assert late.status_code == 409 and late.get_json()["code"] == "confirmation_expired"

    wiring.queue.send("maintenance.expire_unconfirmed")  # what beat sends every 30 s
    wait_until(lambda: status_of(db, tx_id) == "failed")
    detail = client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(alice)).get_json()
    assert (detail["status"], detail["failure_reason"]) == ("failed", "unconfirmed")
    assert _available(client, alice) == "100.000000" and balance(db, alice) == Decimal(100)
    assert step_up.expire(wiring) == 0
    with db.transaction() as session:
        told = session.scalars(
            select(Notification.kind).where(Notification.transaction_id == tx_id)
        ).all()
    assert told == ["transfer_failed"]
    assert _violations_of(db, alice) == []


def test_without_a_connected_wallet_a_high_value_transfer_is_refused(
    app: Any, client: Any, db: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    provision(app, bob)
    assert _settings(client, alice, {"step_up_amount": "10"}).status_code == 200
    with db.transaction() as session:
        before = session.scalar(
            select(WalletCounters.reserved_total).where(
                WalletCounters.wallet_id == wallet(db, alice).id
            )
        )
    refused = _transfer(client, alice, bob, "10")
    assert refused.status_code == 403, refused.get_json()
    assert refused.get_json()["code"] == "step_up_unavailable"
    assert "connect" in refused.get_json()["detail"]
    with db.transaction() as session:
        after = session.scalar(
            select(WalletCounters.reserved_total).where(
                WalletCounters.wallet_id == wallet(db, alice).id
            )
        )
    assert after == before
    assert (
        client.get("/api/wallet", headers=auth(alice)).get_json()["transaction_history"][0]["type"]
        == "reward"
    )


def test_a_repeated_request_replays_the_same_confirmation(app: Any, client: Any, db: Any) -> None:
    alice, _ = _stepped_user(app, client)
    bob = uuid.uuid4()
    provision(app, bob)
    first = _transfer(client, alice, bob, "50", key="big")
    again = _transfer(client, alice, bob, "50", key="big")
    assert first.status_code == again.status_code == 202
    assert again.get_json() == first.get_json()
    with db.transaction() as session:
        count = session.scalar(
            text("SELECT count(*) FROM transactions WHERE debit_wallet_id = :w AND amount = 50"),
            {"w": wallet(db, alice).id},
        )
    assert count == 1


def test_the_own_step_up_amount_is_only_lower_than_the_platforms(client: Any) -> None:
    user = uuid.uuid4()
    settings = client.get("/api/wallet/settings", headers=auth(user)).get_json()
    assert (settings["step_up_amount"], settings["effective_step_up_amount"]) == (
        None,
        "50000.000000",
    )
    higher = _settings(client, user, {"step_up_amount": "50000.000001"})
    assert higher.status_code == 422 and higher.get_json()["code"] == "invalid_transfer"
    lower = _settings(client, user, {"step_up_amount": "100"}).get_json()
    assert (lower["step_up_amount"], lower["effective_step_up_amount"]) == (
        "100.000000",
        "100.000000",
    )
    assert lower["effective_low_balance_threshold"] == "10.000000"  # untouched
    restored = _settings(client, user, {"step_up_amount": None}).get_json()
    assert restored["effective_step_up_amount"] == "50000.000000"


def test_a_high_value_withdrawal_waits_for_the_signature_naming_its_destination(
    app: Any, client: Any, db: Any
) -> None:
    user, external = uuid.uuid4(), Keypair()
    fund(app, user, "60")
    token_account(servers().solana, external.pubkey())
    with db.transaction() as session:  # connected long ago: no new-address cooldown
        session.execute(
            text("UPDATE wallets SET address = :a, step_up_amount = 20 WHERE user_id = :u"),
            {"a": str(external.pubkey()), "u": user},
        )
    response = client.post(
        "/api/wallet/withdrawals",
        json={"amount": "20"},
        headers={**auth(user), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert body["stage"] == "awaiting_confirmation"
    assert f"Solana address {external.pubkey()}" in body["confirmation"]["message"]
    with db.transaction() as session:
        tx = session.get(Transaction, uuid.UUID(body["transaction_id"]))
        assert tx is not None and tx.stage == "awaiting_confirmation" and tx.seq < 0
    assert _available(client, user) == "40.000000"
    confirmed = _confirm(
        client, user, body["transaction_id"], _sign(external, body["confirmation"]["message"])
    )
    assert confirmed.status_code == 202, confirmed.get_json()
    # settlement debits it and hands it to the chain worker (stage on_chain, then completed)
    wait_until(lambda: balance(db, user) == Decimal(40))


def test_a_confirmation_racing_the_expiry_has_exactly_one_outcome(
    app: Any, db: Any, wiring: Any
) -> None:
    import threading

    client = app.test_client()
    alice, owner = _stepped_user(app, client, amount="100", step_up_at="1")
    bob = uuid.uuid4()
    provision(app, bob)
    confirmed = []
    for _ in range(10):
        body = _transfer(client, alice, bob, "1").get_json()
        tx_id, message = body["transaction_id"], body["confirmation"]["message"]
        with db.transaction() as session:  # its window closes right about now
            session.execute(
                text(
                    "UPDATE transactions SET expires_at = now() + interval '50 milliseconds'"
                    " WHERE id = :id"
                ),
                {"id": tx_id},
            )
        start = threading.Barrier(2)
        answer: list[int] = []

        def confirm(
            tx_id: str = tx_id, message: str = message, answer: Any = answer, start: Any = start
        ) -> None:
            start.wait()
            time.sleep(0.045)
            answer.append(
                _confirm(app.test_client(), alice, tx_id, _sign(owner, message)).status_code
            )

        def expire(start: Any = start) -> None:
            start.wait()
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                step_up.expire(wiring)

        threads = [threading.Thread(target=confirm), threading.Thread(target=expire)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wait_settled(db, [tx_id])
        outcome = status_of(db, tx_id)
        assert (outcome, answer) in (("completed", [202]), ("failed", [409])), (outcome, answer)
        if outcome == "completed":
            confirmed.append(tx_id)
    assert balance(db, bob) == len(confirmed)
    assert balance(db, alice) == 100 - len(confirmed)
    assert _available(client, alice) == f"{100 - len(confirmed)}.000000"
    assert _violations_of(db, alice, bob) == []
