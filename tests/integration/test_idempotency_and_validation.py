"""Idempotency-Key semantics and input validation on POST /api/wallet/transfer."""

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text

from app.models import Transaction
from tests.support import auth, fund, provision, wallet

pytestmark = pytest.mark.usefixtures("worker")


def _post(client, sender, body, key="k-1", **headers):
    hdrs = {**auth(sender), **headers}
    if key is not None:
        hdrs["Idempotency-Key"] = key
    return client.post("/api/wallet/transfer", json=body, headers=hdrs)


def _count_debits(db, user) -> int:
    with db.transaction() as session:
        return int(
            session.scalar(
                select(func.count())
                .select_from(Transaction)
                .where(Transaction.debit_wallet_id == wallet(db, user).id)
            )
        )


@pytest.fixture
def pair(app):
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    provision(app, bob)
    return alice, bob


def test_same_key_same_body_replays_the_stored_response(client, db, pair) -> None:
    alice, bob = pair
    body = {"recipient_id": str(bob), "amount": "5"}
    first = _post(client, alice, body)
    second = _post(client, alice, {"amount": 5, "recipient_id": str(bob)})  # same, reformatted
    assert first.status_code == second.status_code == 202
    assert second.get_json() == first.get_json()
    assert second.headers["Idempotent-Replayed"] == "true"
    assert _count_debits(db, alice) == 1


def test_same_key_different_body_is_422(client, db, pair) -> None:
    alice, bob = pair
    _post(client, alice, {"recipient_id": str(bob), "amount": "5"})
    response = _post(client, alice, {"recipient_id": str(bob), "amount": "6"})
    assert response.status_code == 422
    assert response.get_json()["code"] == "idempotency_key_reused"
    assert _count_debits(db, alice) == 1


def test_same_key_while_the_first_is_in_flight_is_409(app, client, db, wiring, pair) -> None:
    alice, bob = pair
    body = {"recipient_id": str(bob), "amount": "5"}
    shard = wallet(db, alice).id.int % wiring.config.settlement_shards
    first: dict[str, object] = {}
    with db.engine.connect() as hold:  # settlement of alice's shard is held back
        hold.execute(text("SELECT pg_advisory_lock(7301, :s)"), {"s": shard})
        hold.commit()

        def waiting_request() -> None:
            with app.test_client() as c:
                first["response"] = _post(c, alice, body, Prefer="wait=3")

        thread = threading.Thread(target=waiting_request)
        thread.start()
        try:
            from tests.support import wait_until

            wait_until(lambda: _count_debits(db, alice) == 1)
            duplicate = _post(client, alice, body)
            assert duplicate.status_code == 409
            assert duplicate.get_json()["code"] == "idempotency_key_in_flight"
        finally:
            thread.join()
            hold.execute(text("SELECT pg_advisory_unlock(7301, :s)"), {"s": shard})
            hold.commit()
    assert first["response"].status_code == 202
    wiring.queue.kick_settlement(shard, force=True)
    from tests.support import wait_settled

    wait_settled(db, [first["response"].get_json()["transaction_id"]])
    replay = _post(client, alice, body)
    assert replay.status_code == 202 and replay.headers["Idempotent-Replayed"] == "true"


def test_keys_are_scoped_to_the_caller(app, client, db, pair) -> None:
    alice, bob = pair
    carol = uuid.uuid4()
    fund(app, carol, "10")
    a = _post(client, alice, {"recipient_id": str(bob), "amount": "1"}, key="shared")
    c = _post(client, carol, {"recipient_id": str(bob), "amount": "1"}, key="shared")
    assert a.status_code == c.status_code == 202
    assert a.get_json()["transaction_id"] != c.get_json()["transaction_id"]


def test_forty_concurrent_identical_requests_make_one_transaction(app, db, pair) -> None:
    alice, bob = pair
    body = {"recipient_id": str(bob), "amount": "1"}

    def send(_: int) -> tuple[int, str]:
        with app.test_client() as c:
            response = _post(c, alice, body, key="burst")
            return response.status_code, response.get_json().get("transaction_id")

    with ThreadPoolExecutor(max_workers=40) as pool:
        results = list(pool.map(send, range(40)))
    assert {status for status, _ in results} <= {202, 409}
    assert len({tx for status, tx in results if status == 202}) == 1
    assert _count_debits(db, alice) == 1


def test_idempotency_keys_expire(app, client, db, wiring, pair) -> None:
    from app.services import idempotency

    alice, bob = pair
    body = {"recipient_id": str(bob), "amount": "1"}
    _post(client, alice, body, key="old")
    with db.transaction() as session:
        session.execute(
            text(
                "UPDATE idempotency_keys SET expires_at = now() - interval '1 s' WHERE key = 'old'"
            )
        )
    with db.transaction() as session:
        assert idempotency.expire(session) >= 1
    assert _post(client, alice, body, key="old").headers.get("Idempotent-Replayed") is None
    assert _count_debits(db, alice) == 2


def test_missing_idempotency_key_is_400(client, pair) -> None:
    alice, bob = pair
    response = _post(client, alice, {"recipient_id": str(bob), "amount": "1"}, key=None)
    assert response.status_code == 400
    assert response.get_json()["code"] == "idempotency_key_required"


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        ("0", "validation_error"),
        ("-1", "validation_error"),
        ("1.0000001", "validation_error"),
        ("1e400", "validation_error"),
        ("NaN", "validation_error"),
        (1e300, "validation_error"),
        ("abc", "validation_error"),
        (True, "validation_error"),
        ("1000000.000001", "amount_too_large"),
    ],
)
def test_bad_amounts_are_422_and_change_nothing(client, db, pair, amount, code) -> None:
    alice, bob = pair
    response = _post(
        client,
        alice,
        {"recipient_id": str(bob), "amount": amount},
        key=None,
        **{"Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == code
    assert _count_debits(db, alice) == 0


def test_unknown_recipient_is_404_and_self_transfer_is_422(client, pair) -> None:
    alice, _ = pair
    unknown = _post(client, alice, {"recipient_id": str(uuid.uuid4()), "amount": "1"})
    assert unknown.status_code == 404 and unknown.get_json()["code"] == "recipient_not_found"
    self_send = _post(client, alice, {"recipient_id": str(alice), "amount": "1"}, key="self")
    assert self_send.status_code == 422 and self_send.get_json()["code"] == "self_transfer"


def test_malformed_json_unknown_fields_and_missing_fields(client, pair) -> None:
    alice, bob = pair
    malformed = client.post(
        "/api/wallet/transfer",
        data="{not json",
        headers={**auth(alice), "Idempotency-Key": "x", "Content-Type": "application/json"},
    )
    assert malformed.status_code == 400 and malformed.get_json()["code"] == "malformed_json"
    extra = _post(client, alice, {"recipient_id": str(bob), "amount": "1", "admin": True})
    assert extra.status_code == 422 and "admin" in extra.get_json()["errors"]
    missing = _post(client, alice, {"amount": "1"}, key="m")
    assert missing.status_code == 422 and "recipient_id" in missing.get_json()["errors"]
    bad_uuid = _post(client, alice, {"recipient_id": "bob", "amount": "1"}, key="u")
    assert bad_uuid.status_code == 422


def test_a_users_transaction_is_invisible_to_others(client, pair) -> None:
    alice, bob = pair
    tx_id = _post(client, alice, {"recipient_id": str(bob), "amount": "1"}).get_json()[
        "transaction_id"
    ]
    stranger = uuid.uuid4()
    response = client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(stranger))
    assert response.status_code == 404 and response.get_json()["code"] == "transaction_not_found"
    assert client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(bob)).status_code == 200
