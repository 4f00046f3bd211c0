"""HTTP in, database out, through gunicorn with two worker processes."""

import json
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select

from app.models import Wallet
from tests.support import auth


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_fifty_first_requests_across_processes_create_one_wallet(live_server, db) -> None:
    user = uuid.uuid4()
    headers = auth(user)
    with ThreadPoolExecutor(max_workers=50) as pool:
        results = list(pool.map(lambda _: _get(f"{live_server}/api/wallet", headers), range(50)))
    assert {status for status, _ in results} == {200}
    assert len({body["wallet"]["id"] for _, body in results}) == 1
    with db.transaction() as session:
        count = session.scalar(
            select(func.count()).select_from(Wallet).where(Wallet.user_id == user)
        )
    assert count == 1


def test_a_guest_gets_a_401_problem_over_http(live_server) -> None:
    status, body = _get(f"{live_server}/api/wallet", {})
    assert status == 401 and body["code"] == "unauthorized"


def test_readyz_over_http(live_server) -> None:
    assert _get(f"{live_server}/readyz", {}) == (
        200,
        {"status": "ready", "checks": {"database": "ok", "redis": "ok"}},
    )


def _post(url: str, body: dict, headers: dict[str, str]) -> tuple[int, dict]:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=15) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def test_a_transfer_over_http_settles_through_the_worker(live_server, app, db, worker) -> None:
    from decimal import Decimal

    from tests.support import balance, fund

    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "12")
    _get(f"{live_server}/api/wallet", auth(bob))
    status, body = _post(
        f"{live_server}/api/wallet/transfer",
        {"recipient_id": str(bob), "amount": 2.5},
        {**auth(alice), "Idempotency-Key": "e2e-1", "Prefer": "wait=10"},
    )
    assert status == 200, body
    assert (body["status"], body["balance_after"]) == ("completed", "9.500000")
    assert balance(db, bob) == Decimal("2.5")
    status, replay = _post(
        f"{live_server}/api/wallet/transfer",
        {"recipient_id": str(bob), "amount": "2.5"},
        {**auth(alice), "Idempotency-Key": "e2e-1"},
    )
    assert (status, replay) == (200, body)
