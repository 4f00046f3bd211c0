"""Rate limits: per user, stricter on money and wallet connection, 429 problem+json with
Retry-After, fail closed for money when the limiter's Redis is down."""

import uuid

import pytest
from solders.keypair import Keypair

from app import create_app
from tests.conftest import auth


@pytest.fixture
def limited(config):  # type: ignore[no-untyped-def]
    app = create_app(
        config.replace(
            rate_limit_default="5/minute",
            rate_limit_money="2/minute",
            rate_limit_wallet_auth="3/minute",
        )
    )
    return app.test_client()


def test_reads_trip_the_default_limit_per_user_with_a_429_problem(limited) -> None:  # type: ignore[no-untyped-def]
    user, other = uuid.uuid4(), uuid.uuid4()
    statuses = [limited.get("/api/wallet", headers=auth(user)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    response = limited.get("/api/wallet", headers=auth(user))
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    assert limited.get("/api/wallet", headers=auth(other)).status_code == 200  # per user


def test_money_endpoints_have_a_stricter_limit(limited) -> None:  # type: ignore[no-untyped-def]
    user = uuid.uuid4()
    statuses = [
        limited.post(
            "/api/wallet/transfer",
            json={"recipient_id": str(uuid.uuid4()), "amount": "1"},
            headers={**auth(user), "Idempotency-Key": str(i)},
        ).status_code
        for i in range(3)
    ]
    assert statuses[:2] != [429, 429] and statuses[2] == 429


def test_wallet_connection_has_a_stricter_limit(limited) -> None:  # type: ignore[no-untyped-def]
    user, address = uuid.uuid4(), str(Keypair().pubkey())
    statuses = [
        limited.post(
            "/api/wallet/challenge", json={"wallet_address": address}, headers=auth(user)
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429] or statuses == [200, 200, 200, 429]


def test_guests_are_limited_per_ip(limited) -> None:  # type: ignore[no-untyped-def]
    statuses = [limited.get("/api/wallet").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_money_fails_closed_when_the_limiter_is_down_and_reads_stay_open(config) -> None:  # type: ignore[no-untyped-def]
    app = create_app(config.replace(ratelimit_storage_url="redis://127.0.0.1:1/0"))
    client, user = app.test_client(), uuid.uuid4()
    assert client.get("/api/wallet", headers=auth(user)).status_code == 200
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(uuid.uuid4()), "amount": "1"},
        headers={**auth(user), "Idempotency-Key": "x"},
    )
    assert response.status_code == 503
    assert response.get_json()["code"] == "rate_limiter_unavailable"
