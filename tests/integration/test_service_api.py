"""Fees, rewards and refunds from other services, through the same pipeline."""

import uuid
from decimal import Decimal

import pytest

from app.services import transfers
from tests.support import auth, balance, fund, provision, status_of, wait_settled, wallet

pytestmark = pytest.mark.usefixtures("worker")


def _service_post(client, path, body, key=None, role="service"):
    headers = {**auth(uuid.uuid4(), role), "Idempotency-Key": key or str(uuid.uuid4())}
    return client.post(f"/api/internal/{path}", json=body, headers=headers)


def _platform_balance(db, system_wallets) -> Decimal:
    from app.models import Wallet

    with db.transaction() as session:
        return session.get(Wallet, system_wallets.platform()).balance


def test_a_service_fee_moves_money_to_the_platform_and_shows_negative(
    app, client, db, system_wallets
) -> None:
    user = uuid.uuid4()
    fund(app, user, "20")
    before = _platform_balance(db, system_wallets)
    response = _service_post(
        client, "charges", {"user_id": str(user), "amount": "10.50", "reason": "listing fee"}
    )
    assert response.status_code == 202
    wait_settled(db, [response.get_json()["transaction_id"]])
    assert balance(db, user) == Decimal("9.5")
    assert _platform_balance(db, system_wallets) == before + Decimal("10.5")
    history = client.get("/api/wallet", headers=auth(user)).get_json()["transaction_history"]
    assert (history[0]["type"], history[0]["amount"]) == ("service_fee", "-10.500000")


@pytest.mark.parametrize("path", ["charges", "rewards", "refunds"])
def test_users_cannot_call_the_service_api(client, path) -> None:
    response = _service_post(client, path, {}, role="user")
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"


def test_bulk_rewards_pay_every_item_all_or_nothing(
    app, client, db, wiring, system_wallets
) -> None:
    users = [uuid.uuid4() for _ in range(3)]
    for u in users:
        provision(app, u)
    wait_settled(db, [transfers.mint(wiring, system_wallets, Decimal(999), "rewards budget")])
    items = [
        {"user_id": str(users[i % 3]), "amount": "1", "reason": "cashback"} for i in range(999)
    ]
    response = _service_post(client, "rewards", {"items": items})
    assert response.status_code == 202, response.get_json()
    assert response.get_json()["count"] == 999
    wait_settled(db, response.get_json()["transaction_ids"], timeout=60)
    assert [balance(db, u) for u in users] == [Decimal(333)] * 3


def test_rewards_beyond_the_platform_balance_record_nothing(
    app, client, db, system_wallets
) -> None:
    users = [uuid.uuid4(), uuid.uuid4()]
    for u in users:
        provision(app, u)
    half = (_platform_balance(db, system_wallets) / 2).quantize(Decimal("0.000001"))
    items = [{"user_id": str(u), "amount": str(half + 1), "reason": "x"} for u in users]
    response = _service_post(client, "rewards", {"items": items})
    assert response.status_code == 422
    assert response.get_json()["code"] == "insufficient_balance"
    assert [wallet(db, u).reserved for u in users] == [0, 0]
    assert client.get("/api/wallet", headers=auth(users[0])).get_json()["transaction_history"] == []


def _has_wallet(db, user_id) -> bool:
    from sqlalchemy import select

    from app.models import User, Wallet

    with db.transaction() as session:
        return bool(
            session.scalar(select(Wallet.id).where(Wallet.user_id == user_id))
            or session.get(User, user_id)
        )


def test_rewarding_users_the_wallet_has_never_seen_creates_their_wallets_and_pays_them(
    app, client, db, wiring, system_wallets
) -> None:
    wait_settled(db, [transfers.mint(wiring, system_wallets, Decimal(5), "rewards budget")])
    single, first, second = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    response = _service_post(
        client, "rewards", {"user_id": str(single), "amount": "2", "reason": "welcome"}
    )
    assert response.status_code == 202, response.get_json()
    items = [
        {"user_id": str(first), "amount": "1", "reason": "cashback"},
        {"user_id": str(second), "amount": "1.5", "reason": "cashback"},
        {"user_id": str(first), "amount": "0.5", "reason": "cashback"},
    ]
    bulk = _service_post(client, "rewards", {"items": items})
    assert bulk.status_code == 202, bulk.get_json()
    wait_settled(db, [response.get_json()["transaction_id"], *bulk.get_json()["transaction_ids"]])
    assert [balance(db, u) for u in (single, first, second)] == [
        Decimal(2),
        Decimal("1.5"),
        Decimal("1.5"),
    ]
    # The user's first login finds the wallet the reward made, with the reward in its history.
    view = client.get("/api/wallet", headers=auth(single)).get_json()
    assert view["wallet"]["balance"] == "2.000000"
    assert [(t["type"], t["amount"]) for t in view["transaction_history"]] == [
        ("reward", "2.000000")
    ]


def test_charging_a_user_the_wallet_has_never_seen_creates_an_empty_wallet_and_is_refused(
    client, db
) -> None:
    user = uuid.uuid4()
    response = _service_post(
        client, "charges", {"user_id": str(user), "amount": "1", "reason": "listing fee"}
    )
    assert response.status_code == 422 and response.get_json()["code"] == "insufficient_balance"
    assert wallet(db, user).balance == 0


def test_concurrent_first_rewards_to_one_user_create_one_wallet(
    app, db, wiring, system_wallets
) -> None:
    import threading

    wait_settled(db, [transfers.mint(wiring, system_wallets, Decimal(8), "rewards budget")])
    user = uuid.uuid4()
    start = threading.Barrier(8)
    answers: list[int] = []

    def reward() -> None:
        client = app.test_client()
        start.wait()
        answers.append(
            _service_post(
                client, "rewards", {"user_id": str(user), "amount": "1", "reason": "race"}
            ).status_code
        )

    threads = [threading.Thread(target=reward) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [202] * 8
    from tests.support import wait_until

    wait_until(lambda: balance(db, user) == Decimal(8))


def test_a_reserved_id_is_never_created_by_a_service(client, db) -> None:
    reserved = uuid.UUID("00000000-0000-0000-0000-00000000abcd")  # no system account (yet)
    for path, body in (
        ("rewards", {"user_id": str(reserved), "amount": "1", "reason": "x"}),
        ("charges", {"user_id": str(reserved), "amount": "1", "reason": "x"}),
    ):
        response = _service_post(client, path, body)
        assert response.status_code == 404, response.get_json()
        assert response.get_json()["code"] == "recipient_not_found"
    assert not _has_wallet(db, reserved)


def test_a_user_transfer_to_an_unknown_recipient_stays_404_and_creates_nothing(
    app, client, db
) -> None:
    alice, stranger = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "5")
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(stranger), "amount": "1"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 404 and response.get_json()["code"] == "recipient_not_found"
    assert not _has_wallet(db, stranger)


def test_reward_item_limits_and_shapes_are_validated(client) -> None:
    item = {"user_id": str(uuid.uuid4()), "amount": "1", "reason": "x"}
    too_many = _service_post(client, "rewards", {"items": [item] * 1001})
    assert too_many.status_code == 422
    both = _service_post(client, "rewards", {"items": [item], **item})
    assert both.status_code == 422
    neither = _service_post(client, "rewards", {"reason": "x"})
    assert neither.status_code == 422


def test_refunds_never_exceed_the_original(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "50")
    provision(app, bob)
    transfer = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "30"},
        headers={**auth(alice), "Idempotency-Key": "t", "Prefer": "wait=5"},
    ).get_json()
    assert transfer["status"] == "completed"
    original = transfer["transaction_id"]

    first = _service_post(client, "refunds", {"transaction_id": original, "amount": "20"})
    assert first.status_code == 202
    too_much = _service_post(client, "refunds", {"transaction_id": original, "amount": "10.01"})
    assert too_much.status_code == 422
    assert too_much.get_json()["code"] == "refund_exceeds_original"
    assert too_much.get_json()["refundable"] == "10.000000"
    rest = _service_post(client, "refunds", {"transaction_id": original})  # the remainder
    assert rest.status_code == 202
    wait_settled(db, [first.get_json()["transaction_id"], rest.get_json()["transaction_id"]])
    assert balance(db, alice) == Decimal(50) and balance(db, bob) == Decimal(0)
    again = _service_post(client, "refunds", {"transaction_id": original, "amount": "0.000001"})
    assert again.status_code == 422


def test_only_completed_transfers_and_fees_are_refundable(app, client, db) -> None:
    user = uuid.uuid4()
    fund(app, user, "5")
    reward_id = client.get("/api/wallet", headers=auth(user)).get_json()["transaction_history"][0][
        "id"
    ]
    response = _service_post(client, "refunds", {"transaction_id": reward_id})
    assert response.status_code == 422 and response.get_json()["code"] == "not_refundable"
    missing = _service_post(client, "refunds", {"transaction_id": str(uuid.uuid4())})
    assert missing.status_code == 404


def test_a_service_charge_is_idempotent_per_service(client, db, app) -> None:
    user = uuid.uuid4()
    fund(app, user, "5")
    service = uuid.uuid4()
    headers = {**auth(service, "service"), "Idempotency-Key": "fee-1"}
    body = {"user_id": str(user), "amount": "1", "reason": "fee"}
    one = client.post("/api/internal/charges", json=body, headers=headers).get_json()
    two = client.post("/api/internal/charges", json=body, headers=headers).get_json()
    assert one["transaction_id"] == two["transaction_id"]
    wait_settled(db, [one["transaction_id"]])
    assert balance(db, user) == Decimal(4)
    assert status_of(db, one["transaction_id"]) == "completed"
    assert wallet(db, user).reserved == Decimal(0)
