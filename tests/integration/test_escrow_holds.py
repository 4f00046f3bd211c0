"""Escrow holds (two-phase transfers) through the real stack: the service API places, captures
and voids them, the settlement worker settles captures, the expiry job releases them."""

from __future__ import annotations

import threading
import time
import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from app.models import EscrowHold, Notification, Transaction
from app.services import escrow_expiry, invariants
from tests.support import auth, balance, fund, provision, wait_settled, wait_until, wallet

pytestmark = pytest.mark.usefixtures("worker")


def _post(client: Any, service: uuid.UUID, path: str, body: Any = None, key: str | None = None):
    headers = {**auth(service, "service"), "Idempotency-Key": key or str(uuid.uuid4())}
    return client.post(f"/api/internal/{path}", json=body or {}, headers=headers)


def _place(client: Any, service: uuid.UUID, user: uuid.UUID, amount: str) -> Any:
    return _post(
        client, service, "holds", {"user_id": str(user), "amount": amount, "reason": "deal 7"}
    )


def _hold(client: Any, service: uuid.UUID, user: uuid.UUID, amount: str) -> str:
    response = _place(client, service, user, amount)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["status"] == "active" and body["amount"] == f"{Decimal(amount):.6f}"
    return str(body["hold_id"])


def _overview(client: Any, user: uuid.UUID) -> dict[str, Any]:
    return client.get("/api/wallet", headers=auth(user)).get_json()["wallet"]


def _kinds(db: Any, user: uuid.UUID) -> list[str]:
    with db.transaction() as session:
        return list(
            session.scalars(
                select(Notification.kind)
                .where(Notification.user_id == user, Notification.kind.like("hold_%"))
                .order_by(Notification.id)
            )
        )


def _violations_of(db: Any, *users: uuid.UUID) -> list[invariants.Violation]:
    ids = {str(wallet(db, u).id) for u in users}
    with db.transaction() as session:
        return [v for v in invariants.check(session) if v.subject in ids]


def _status(db: Any, hold_id: str) -> str:
    with db.transaction() as session:
        return str(session.scalar(select(EscrowHold.status).where(EscrowHold.id == hold_id)))


def test_a_hold_reserves_at_once_and_a_partial_capture_pays_the_recipient_and_releases_the_rest(
    app: Any, client: Any, db: Any
) -> None:
    buyer, seller, service = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, buyer, "100")
    hold_id = _hold(client, service, buyer, "60")

    view = _overview(client, buyer)
    assert (view["balance"], view["available_balance"], view["on_hold"]) == (
        "100.000000",
        "40.000000",
        "60.000000",
    )
    listed = client.get("/api/wallet/holds", headers=auth(buyer)).get_json()["items"]
    assert [(h["hold_id"], h["amount"], h["reason"]) for h in listed] == [
        (hold_id, "60.000000", "deal 7")
    ]
    friend = uuid.uuid4()
    provision(app, friend)
    too_much = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(friend), "amount": "41"},
        headers={**auth(buyer), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert too_much.status_code == 422 and too_much.get_json()["code"] == "insufficient_balance"

    # The seller has never used the wallet: the capture creates their wallet like a reward does.
    captured = _post(
        client,
        service,
        f"holds/{hold_id}/capture",
        {"amount": "25", "recipient_id": str(seller)},
    )
    assert captured.status_code == 202, captured.get_json()
    body = captured.get_json()
    assert (body["status"], body["captured_amount"], body["released_amount"]) == (
        "captured",
        "25.000000",
        "35.000000",
    )
    wait_settled(db, [body["transaction_id"]])

    assert balance(db, buyer) == Decimal(75) and balance(db, seller) == Decimal(25)
    view = _overview(client, buyer)
    assert (view["available_balance"], view["on_hold"]) == ("75.000000", "0.000000")
    assert client.get("/api/wallet/holds", headers=auth(buyer)).get_json()["items"] == []
    history = client.get("/api/wallet", headers=auth(buyer)).get_json()["transaction_history"]
    assert (history[0]["id"], history[0]["type"], history[0]["amount"], history[0]["note"]) == (
        body["transaction_id"],
        "transfer",
        "-25.000000",
        "deal 7",
    )
    with db.transaction() as session:
        details = session.scalar(
            select(Transaction.details).where(Transaction.id == body["transaction_id"])
        )
    assert details["hold_id"] == hold_id  # the transaction is linked to its hold
    assert _kinds(db, buyer) == ["hold_placed", "hold_captured"]
    assert _violations_of(db, buyer, seller) == []

    again = _post(client, service, f"holds/{hold_id}/capture", {"amount": "1"})
    assert again.status_code == 202 and again.get_json() == body  # the capture that happened
    void = _post(client, service, f"holds/{hold_id}/void")
    assert void.status_code == 409 and void.get_json()["code"] == "hold_not_active"


def test_a_full_capture_without_recipient_is_a_fee_to_the_platform(
    app: Any, client: Any, db: Any, system_wallets: Any
) -> None:
    from app.models import Wallet

    buyer, service = uuid.uuid4(), uuid.uuid4()
    fund(app, buyer, "10")
    with db.transaction() as session:
        before = session.get(Wallet, system_wallets.platform()).balance
    hold_id = _hold(client, service, buyer, "4")
    captured = _post(client, service, f"holds/{hold_id}/capture")
    assert captured.status_code == 202, captured.get_json()
    wait_settled(db, [captured.get_json()["transaction_id"]])
    assert balance(db, buyer) == Decimal(6)
    with db.transaction() as session:
        assert session.get(Wallet, system_wallets.platform()).balance == before + 4
    assert _overview(client, buyer)["available_balance"] == "6.000000"


def test_a_hold_beyond_the_available_balance_is_refused_and_reserves_nothing(
    app: Any, client: Any, db: Any
) -> None:
    buyer, service = uuid.uuid4(), uuid.uuid4()
    fund(app, buyer, "5")
    _hold(client, service, buyer, "3")
    refused = _place(client, service, buyer, "2.000001")
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["code"] == "insufficient_balance"
    assert refused.get_json()["available_balance"] == "2.000000"
    view = _overview(client, buyer)
    assert (view["available_balance"], view["on_hold"]) == ("2.000000", "3.000000")
    assert _violations_of(db, buyer) == []


def test_a_hold_on_an_unseen_user_creates_an_empty_wallet_and_a_system_id_is_not_found(
    client: Any, db: Any
) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    body = {"user_id": str(user), "amount": "1", "reason": "deal"}
    first = _post(client, service, "holds", body, key="hold-1")
    # an unseen user gets a wallet (empty): nothing to hold
    assert first.status_code == 422 and first.get_json()["code"] == "insufficient_balance"
    assert wallet(db, user).balance == 0
    reserved = _post(
        client, service, "holds", {**body, "user_id": "00000000-0000-0000-0000-000000000001"}
    )
    assert reserved.status_code == 404 and reserved.get_json()["code"] == "recipient_not_found"


def test_a_repeated_key_replays_the_hold_and_another_body_is_refused(
    app: Any, client: Any, db: Any
) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    body = {"user_id": str(user), "amount": "2", "reason": "deal"}
    first = _post(client, service, "holds", body, key="k")
    again = _post(client, service, "holds", body, key="k")
    assert first.status_code == again.status_code == 201
    assert again.get_json() == first.get_json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = _post(client, service, "holds", {**body, "amount": "3"}, key="k")
    assert other.status_code == 422 and other.get_json()["code"] == "idempotency_key_reused"
    assert _overview(client, user)["on_hold"] == "2.000000"


def test_only_the_service_that_placed_a_hold_decides_it(app: Any, client: Any) -> None:
    user, service, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    hold_id = _hold(client, service, user, "1")
    for path in (f"holds/{hold_id}/capture", f"holds/{hold_id}/void"):
        response = _post(client, other, path)
        assert response.status_code == 404 and response.get_json()["code"] == "hold_not_found"
    assert _post(client, service, f"holds/{uuid.uuid4()}/void").status_code == 404


def test_capture_beyond_the_hold_and_to_itself_are_refused(app: Any, client: Any) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    hold_id = _hold(client, service, user, "2")
    beyond = _post(client, service, f"holds/{hold_id}/capture", {"amount": "2.000001"})
    assert beyond.status_code == 422 and beyond.get_json()["code"] == "capture_exceeds_hold"
    itself = _post(client, service, f"holds/{hold_id}/capture", {"recipient_id": str(user)})
    assert itself.status_code == 422 and itself.get_json()["code"] == "self_transfer"
    system = _post(
        client,
        service,
        f"holds/{hold_id}/capture",
        {"recipient_id": "00000000-0000-0000-0000-000000000001"},
    )
    assert system.status_code == 404 and system.get_json()["code"] == "recipient_not_found"
    assert _overview(client, user)["on_hold"] == "2.000000"  # still active


def test_a_void_releases_the_hold_once(app: Any, client: Any, db: Any) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    hold_id = _hold(client, service, user, "5")
    voided = _post(client, service, f"holds/{hold_id}/void")
    assert voided.status_code == 200, voided.get_json()
    assert voided.get_json()["release_reason"] == "voided"
    again = _post(client, service, f"holds/{hold_id}/void")
    assert again.status_code == 200 and again.get_json() == voided.get_json()
    capture = _post(client, service, f"holds/{hold_id}/capture")
    assert capture.status_code == 409 and capture.get_json()["code"] == "hold_not_active"
    assert _overview(client, user)["available_balance"] == "5.000000"
    assert _kinds(db, user) == ["hold_placed", "hold_released"]
    assert _violations_of(db, user) == []


def test_capture_racing_void_has_exactly_one_winner(app: Any, db: Any) -> None:
    user, recipient, service = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, user, "40")
    provision(app, recipient)
    captured_ids = []
    for _ in range(20):
        hold_id = _hold(app.test_client(), service, user, "2")
        start = threading.Barrier(2)
        answers: dict[str, int] = {}

        def call(
            action: str,
            body: Any,
            hold_id: str = hold_id,
            answers: Any = answers,
            start: Any = start,
        ) -> None:
            client = app.test_client()
            start.wait()
            answers[action] = _post(client, service, f"holds/{hold_id}/{action}", body).status_code

        threads = [
            threading.Thread(target=call, args=("capture", {"recipient_id": str(recipient)})),
            threading.Thread(target=call, args=("void", None)),
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(answers.values()) in ([200, 409], [202, 409]), answers
        status = _status(db, hold_id)
        assert status == ("captured" if answers["capture"] == 202 else "released")
        if status == "captured":
            with db.transaction() as session:
                captured_ids.append(
                    session.scalar(
                        select(EscrowHold.transaction_id).where(EscrowHold.id == hold_id)
                    )
                )
    wait_settled(db, captured_ids)
    assert balance(db, recipient) == 2 * len(captured_ids)
    assert balance(db, user) == 40 - 2 * len(captured_ids)
    assert _overview(app.test_client(), user)["on_hold"] == "0.000000"
    assert _violations_of(db, user, recipient) == []


def test_an_expired_hold_is_released_by_the_job_and_no_longer_capturable(
    app: Any, client: Any, db: Any, wiring: Any
) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    response = _post(
        client,
        service,
        "holds",
        {"user_id": str(user), "amount": "3", "reason": "deal", "expires_in_seconds": 1},
    )
    hold_id = response.get_json()["hold_id"]
    time.sleep(1.1)
    expired = _post(client, service, f"holds/{hold_id}/capture")
    assert expired.status_code == 409 and expired.get_json()["code"] == "hold_not_active"
    wiring.queue.send("maintenance.expire_holds")  # what beat sends every minute
    wait_until(lambda: _status(db, hold_id) == "released")
    assert _overview(client, user)["available_balance"] == "5.000000"
    assert _kinds(db, user) == ["hold_placed", "hold_released"]
    assert _violations_of(db, user) == []


def test_capture_racing_the_expiry_has_exactly_one_winner(app: Any, db: Any, wiring: Any) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "40")
    outcomes = []
    for _ in range(20):
        hold_id = _hold(app.test_client(), service, user, "1")
        with db.transaction() as session:  # expiring right about now
            session.execute(
                text(
                    "UPDATE escrow_holds SET expires_at = now() + interval '50 milliseconds'"
                    " WHERE id = :id"
                ),
                {"id": hold_id},
            )
        start = threading.Barrier(2)
        answer: list[int] = []

        def capture(hold_id: str = hold_id, answer: list[int] = answer, start: Any = start) -> None:
            client = app.test_client()
            start.wait()
            time.sleep(0.045)
            answer.append(_post(client, service, f"holds/{hold_id}/capture").status_code)

        def expire(start: Any = start) -> None:
            start.wait()
            deadline = time.monotonic() + 0.3
            while time.monotonic() < deadline:
                escrow_expiry.expire(wiring)

        threads = [threading.Thread(target=capture), threading.Thread(target=expire)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        status = _status(db, hold_id)
        assert (status, answer) in (("captured", [202]), ("released", [409])), (status, answer)
        outcomes.append(status)
    wait_until(lambda: _overview(app.test_client(), user)["on_hold"] == "0.000000")
    with db.transaction() as session:
        pending = session.scalar(
            text(
                "SELECT array_agg(transaction_id) FROM escrow_holds"
                " WHERE status = 'captured' AND wallet_id = :w"
            ),
            {"w": wallet(db, user).id},
        )
    wait_settled(db, pending or [])
    assert balance(db, user) == 40 - outcomes.count("captured")
    assert _violations_of(db, user) == []


def test_ledger_check_counts_active_holds_in_the_reservation(
    app: Any, client: Any, db: Any
) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    hold_id = _hold(client, service, user, "2")
    runner = app.test_cli_runner()
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0
    with db.transaction() as session:  # a hold the reservation does not cover
        session.execute(
            text("UPDATE escrow_holds SET amount = amount + 1 WHERE id = :id"), {"id": hold_id}
        )
    try:
        broken = runner.invoke(args=["ledger", "check"])
        assert broken.exit_code == 1
        assert "reserved_equals_pending_debits" in broken.output
        assert "on_hold_equals_active_escrow_holds" in broken.output
        assert str(wallet(db, user).id) in broken.output
    finally:
        with db.transaction() as session:
            session.execute(
                text("UPDATE escrow_holds SET amount = amount - 1 WHERE id = :id"),
                {"id": hold_id},
            )
    assert runner.invoke(args=["ledger", "check"]).exit_code == 0
