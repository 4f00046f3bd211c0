"""Rate limits: per user, stricter on money and wallet connection, 429 problem+json with
Retry-After, fail closed for money when the limiter's Redis is down."""

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
import redis
from solders.keypair import Keypair

from app import create_app
from tests.support import auth


@pytest.fixture
def limited(config):
    app = create_app(
        config.replace(
            rate_limit_default="5/minute",
            rate_limit_money="2/minute",
            rate_limit_wallet_auth="3/minute",
        )
    )
    return app.test_client()


def test_reads_trip_the_default_limit_per_user_with_a_429_problem(limited) -> None:
    user, other = uuid.uuid4(), uuid.uuid4()
    statuses = [limited.get("/api/wallet", headers=auth(user)).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    response = limited.get("/api/wallet", headers=auth(user))
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "rate_limited"
    assert int(response.headers["Retry-After"]) > 0
    assert limited.get("/api/wallet", headers=auth(other)).status_code == 200  # per user


def test_money_endpoints_have_a_stricter_limit(limited) -> None:
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


def test_wallet_connection_has_a_stricter_limit(limited) -> None:
    user, address = uuid.uuid4(), str(Keypair().pubkey())
    statuses = [
        limited.post(
            "/api/wallet/challenge", json={"wallet_address": address}, headers=auth(user)
        ).status_code
        for _ in range(4)
    ]
    assert statuses == [201, 201, 201, 429] or statuses == [200, 200, 200, 429]


def test_guests_are_limited_per_ip(limited) -> None:
    statuses = [limited.get("/api/wallet").status_code for _ in range(6)]
    assert statuses == [401] * 5 + [429]


def test_money_fails_closed_when_the_limiter_is_down_and_reads_stay_open(config) -> None:
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


@contextmanager
def limiter_round_trips(app: Any) -> Iterator[list[bytes]]:
    """The commands the app's rate limiter sends to its Redis while the block runs, one entry
    per round trip: on its held connections (`HotRedis`, one command per round trip) and on
    any connection of its redis-py pool (which writes a command, or a whole pipeline, with one
    `send_packed_command`)."""
    storage = app.extensions["limiter"].storage
    pool = storage.storage.connection_pool
    sent: list[bytes] = []
    original = redis.connection.AbstractConnection.send_packed_command
    held = storage.hot._once

    def spy(connection, command, check_health=True):
        if connection in pool._in_use_connections:
            packed = command if isinstance(command, bytes) else b"".join(command)
            sent.append(packed.split(b"\r\n")[2])  # the command's name
        return original(connection, command, check_health)

    def spy_held(args):
        sent.append(str(args[0]).encode())
        return held(args)

    redis.connection.AbstractConnection.send_packed_command = spy
    storage.hot._once = spy_held
    try:
        yield sent
    finally:
        redis.connection.AbstractConnection.send_packed_command = original
        del storage.hot._once


def test_a_request_costs_the_limiter_one_redis_round_trip(config) -> None:
    app = create_app(config.replace(rate_limit_default="5/minute", rate_limit_money="2/minute"))
    client, user = app.test_client(), uuid.uuid4()
    client.get("/api/wallet", headers=auth(uuid.uuid4()))  # connects and loads the script

    def transfer(key: str) -> Any:
        return client.post(
            "/api/wallet/transfer",
            json={"recipient_id": str(uuid.uuid4()), "amount": "1"},
            headers={**auth(user), "Idempotency-Key": key},
        )

    with limiter_round_trips(app) as read:
        got = client.get("/api/wallet", headers=auth(user))
    with limiter_round_trips(app) as money:
        posted = transfer("a")
    transfer("b")
    with limiter_round_trips(app) as refused:
        breached = transfer("c")
    with limiter_round_trips(app) as exempt:
        client.get("/healthz")

    assert got.status_code == 200 and posted.status_code != 429 and breached.status_code == 429
    assert [read, money, refused, exempt] == [[b"EVALSHA"], [b"EVALSHA"], [b"EVALSHA"], []]
    # The headers come from that one hit: the window's limit, what is left, when it resets.
    assert (got.headers["X-RateLimit-Limit"], got.headers["X-RateLimit-Remaining"]) == ("5", "4")
    assert (posted.headers["X-RateLimit-Limit"], posted.headers["X-RateLimit-Remaining"]) == (
        "2",
        "1",
    )
    assert breached.headers["X-RateLimit-Remaining"] == "0"
    assert 0 < int(breached.headers["Retry-After"]) <= 61
    assert int(breached.headers["X-RateLimit-Reset"]) - time.time() <= 62
