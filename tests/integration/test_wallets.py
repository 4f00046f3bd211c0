"""One wallet per user, created implicitly on first authenticated use."""

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError

from app.domain.accounts import PLATFORM_USER_ID
from app.models import User, Wallet
from app.services.wallets import SystemWallets
from tests.support import auth


def test_a_new_user_sees_a_zero_balance_and_an_empty_history(client, user) -> None:
    response = client.get("/api/wallet", headers=auth(user))
    assert response.status_code == 200
    body = response.get_json()
    assert body["wallet"]["balance"] == "0.000000"
    assert body["wallet"]["available_balance"] == "0.000000"
    assert body["wallet"]["is_connected"] is False
    assert body["wallet"]["address"] is None
    assert body["wallet"]["network"] == "solana"
    assert body["transaction_history"] == []


def test_fifty_racing_first_requests_create_exactly_one_wallet(app, db, user) -> None:
    headers = auth(user)

    def first_request(_: int) -> str:
        with app.test_client() as c:
            response = c.get("/api/wallet", headers=headers)
            assert response.status_code == 200, response.get_data(as_text=True)
            return str(response.get_json()["wallet"]["id"])

    # Fresh provisioners per thread would be closer to many processes; the shared one is raced
    # too: every thread misses its cache before the first insert commits.
    with ThreadPoolExecutor(max_workers=50) as pool:
        wallet_ids = set(pool.map(first_request, range(50)))

    with db.transaction() as session:
        rows = session.scalar(
            select(func.count()).select_from(Wallet).where(Wallet.user_id == user)
        )
    assert rows == 1
    assert len(wallet_ids) == 1


def test_the_database_refuses_a_second_wallet_for_a_user(client, db, user) -> None:
    client.get("/api/wallet", headers=auth(user))
    with pytest.raises(IntegrityError, match="uq_wallets_user_id"):
        with db.transaction() as session:
            session.add(Wallet(user_id=user))


def test_the_database_refuses_a_negative_balance(client, db, user) -> None:
    client.get("/api/wallet", headers=auth(user))
    with pytest.raises(IntegrityError, match="balance_non_negative"):
        with db.transaction() as session:
            session.execute(text("UPDATE wallets SET balance = -1 WHERE user_id = :u"), {"u": user})


def test_an_address_is_connected_to_at_most_one_wallet(client, db) -> None:
    first, second = uuid.uuid4(), uuid.uuid4()
    client.get("/api/wallet", headers=auth(first))
    client.get("/api/wallet", headers=auth(second))
    address = str(uuid.uuid4())
    set_address = text("UPDATE wallets SET address = :a WHERE user_id = :u")
    with db.transaction() as session:
        session.execute(set_address, {"a": address, "u": first})
    with pytest.raises(IntegrityError, match="uq_wallets_address"):
        with db.transaction() as session:
            session.execute(set_address, {"a": address, "u": second})


def test_guests_and_bad_tokens_never_create_anything(client, db) -> None:
    stranger = uuid.uuid4()
    forged = auth(stranger)
    forged["Authorization"] += "x"
    assert client.get("/api/wallet").status_code == 401
    assert client.get("/api/wallet", headers=forged).status_code == 401
    with db.transaction() as session:
        assert session.get(User, stranger) is None


def test_no_endpoint_creates_wallets(app) -> None:
    for rule in app.url_map.iter_rules():
        if "POST" in rule.methods and rule.rule.rstrip("/") in ("/api/wallet", "/api/wallets"):
            pytest.fail(f"{rule.rule} accepts POST")
    with app.test_client() as c:
        assert c.post("/api/wallet", json={}, headers=auth(uuid.uuid4())).status_code == 405


def test_the_platform_wallet_is_one_cached_get_or_create(db) -> None:
    first, second = SystemWallets(db), SystemWallets(db)
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = set(pool.map(lambda i: (first if i % 2 else second).platform(), range(16)))
    assert len(ids) == 1
    with db.transaction() as session:
        wallet = session.get(Wallet, ids.pop())
        assert (
            wallet is not None and wallet.user_id == PLATFORM_USER_ID and wallet.kind == "platform"
        )
