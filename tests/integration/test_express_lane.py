"""The express lane (app/api/express.py): a plain POST /api/wallet/transfer or GET /api/wallet
is answered without Flask's request machinery, exactly as the full path would answer it;
anything else is handed to the full path, and nothing is counted or accepted twice."""

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import func, select
from werkzeug.test import Client

from app import create_app
from app.api import express
from app.api.ratelimit import KEY_PREFIX
from app.models import Transaction
from tests.support import auth, fund, post_transfer, provision

pytestmark = pytest.mark.usefixtures("worker")

# Headers whose values differ between two requests by nature.
TRANSFER_ENDPOINT = "wallet.transfer"
PER_REQUEST = {"x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset", "content-length"}


@pytest.fixture
def handed_over(app: Any, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The paths of the requests the lane handed to the full path during the test."""
    lane = app.wsgi_app
    assert isinstance(lane, express.ExpressLane)
    seen: list[str] = []
    full = lane.full

    def spy(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        seen.append(environ["PATH_INFO"])
        return full(environ, start_response)

    monkeypatch.setattr(lane, "full", spy)
    return seen


@pytest.fixture
def full_path(app: Any) -> Any:
    """A test client of the Flask app behind the lane."""
    return Client(app.wsgi_app.full, app.response_class)


def _comparable(response: Any) -> tuple[int, str, dict[str, Any], set[str], dict[str, str]]:
    body = dict(response.get_json())
    body.pop("transaction_id", None)
    headers = {name.lower() for name in response.headers.keys()}
    fixed = {
        name.lower(): value
        for name, value in response.headers.items()
        if name.lower() not in PER_REQUEST
    }
    return response.status_code, response.mimetype, body, headers, fixed


def test_a_plain_transfer_is_answered_by_the_lane_and_accepted_once(
    app: Any, client: Any, db: Any, handed_over: list[str]
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)

    response = post_transfer(client, alice, bob, "2.5", key="lane-1", **{"X-Request-ID": "rq-7"})

    assert handed_over == []
    assert response.status_code == 202
    assert response.mimetype == "application/json"
    assert response.headers["X-Request-ID"] == "rq-7"
    assert int(response.headers["X-RateLimit-Limit"]) > 0
    body = response.get_json()
    assert body["status"] == "pending" and body["success"] is True
    with db.transaction() as session:
        row = session.execute(
            select(Transaction.amount, Transaction.initiator_id).where(
                Transaction.id == uuid.UUID(body["transaction_id"])
            )
        ).one()
    assert (str(row.amount), row.initiator_id) == ("2.500000", alice)


@pytest.mark.parametrize(
    "case",
    [
        "accepted",
        "replayed",
        "insufficient_balance",
        "unknown_recipient",
        "self",
        "too_large",
        "wallet",
    ],
)
def test_the_lane_answers_exactly_what_the_full_path_answers(
    app: Any, client: Any, full_path: Any, case: str, handed_over: list[str]
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    recipient = {"unknown_recipient": uuid.uuid4(), "self": alice}.get(case, bob)
    amount = {"insufficient_balance": "11", "too_large": "1000000000"}.get(case, "1")

    def send(through: Any, key: str) -> Any:
        if case == "wallet":
            return through.get("/api/wallet", headers=auth(alice))
        if case == "replayed":
            post_transfer(through, alice, recipient, amount, key=key)
        return post_transfer(through, alice, recipient, amount, key=key)

    by_lane = send(client, f"lane-{case}")
    by_full_path = send(full_path, f"full-{case}")

    assert handed_over == []
    assert _comparable(by_lane) == _comparable(by_full_path)
    if case in ("accepted", "replayed"):
        assert by_lane.status_code == 202
    elif case == "wallet":
        assert by_lane.status_code == 200
        assert by_lane.get_json()["wallet"]["balance"] == "10.000000"
    else:
        assert by_lane.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"headers": {"Authorization": ""}}, 401),
        ({"headers": {"Idempotency-Key": ""}}, 400),
        ({"headers": {"Prefer": "wait=1"}}, 200),
        ({"data": "{not json", "content_type": "application/json"}, 400),
        ({"content_type": "text/plain"}, 422),
        ({"json": {"recipient_id": "nope", "amount": "1"}}, 422),
        ({"role": "service"}, 403),
        ({"method": "GET", "headers": {"Authorization": "Basic abc"}}, 401),
        ({"method": "GET", "role": "service"}, 403),
    ],
)
def test_requests_the_lane_does_not_answer_go_to_the_full_path(
    app: Any, client: Any, handed_over: list[str], change: dict[str, Any], status: int
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    body = {"recipient_id": str(bob), "amount": "1"}
    headers = {**auth(alice, change.get("role", "user")), "Idempotency-Key": str(uuid.uuid4())}
    headers.update(change.get("headers", {}))
    if change.get("method") == "GET":
        response = client.get("/api/wallet", headers=headers)
    elif "content_type" in change:
        response = client.post(
            "/api/wallet/transfer",
            data=change.get("data", json.dumps(body)),
            content_type=change["content_type"],
            headers=headers,
        )
    else:
        response = client.post(
            "/api/wallet/transfer", json=change.get("json", body), headers=headers
        )

    assert handed_over == ["/api/wallet" if change.get("method") else "/api/wallet/transfer"]
    assert response.status_code == status


def _transfer_hits(app: Any, user: uuid.UUID) -> int:
    limits = app.extensions["limiter"]
    item = limits.item_for(TRANSFER_ENDPOINT)
    key = limits.storage.prefixed_key(item.key_for(KEY_PREFIX, f"user:{user}", TRANSFER_ENDPOINT))
    return int(limits.storage.get_connection().get(key) or 0)


def test_a_request_over_the_limit_is_counted_once_and_refused_by_the_full_path(
    config: Any,
) -> None:
    app = create_app(config.replace(rate_limit_money="2/minute"))
    client = app.test_client()
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)

    statuses = [post_transfer(client, alice, bob, "1").status_code for _ in range(2)]
    refused = post_transfer(client, alice, bob, "1")

    assert statuses == [202, 202]
    assert refused.status_code == 429
    assert refused.get_json()["code"] == "rate_limited"
    assert refused.headers["X-RateLimit-Remaining"] == "0"
    assert int(refused.headers["Retry-After"]) > 0
    assert _transfer_hits(app, alice) == 3


def test_a_failure_after_accepting_is_answered_by_the_full_path_with_one_transaction(
    app: Any, client: Any, db: Any, handed_over: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    hits_before = _transfer_hits(app, alice)

    def broken_reply(*_: Any, **__: Any) -> Any:
        raise RuntimeError("the answer could not be built")

    monkeypatch.setattr(express, "reply", broken_reply)
    response = post_transfer(client, alice, bob, "3", key="fails-once")

    assert handed_over == ["/api/wallet/transfer"]
    assert response.status_code == 202
    assert response.headers["Idempotent-Replayed"] == "true"  # the lane's attempt was accepted
    assert _transfer_hits(app, alice) == hits_before + 1
    with db.transaction() as session:
        count = session.scalar(
            select(func.count())
            .select_from(Transaction)
            .where(Transaction.initiator_id == alice, Transaction.kind == "transfer")
        )
    assert count == 1
