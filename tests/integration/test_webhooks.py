"""Webhooks: each notification POSTed signed, retried with backoff, its status visible to admins.

The session's WEBHOOK_URL points at the `webhook_receiver` fixture, so every notification of the
suite is delivered there; tests program answers for their own notifications only.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import text

from app.bootstrap import Wiring, bootstrap
from app.domain.notifications import NewNotification
from app.models import Notification
from app.services import notifications, webhooks
from tests.servers import WEBHOOK_SECRET, ReceivedWebhook, Stall
from tests.support import auth, fund, provision, wait_settled, wait_until

pytestmark = pytest.mark.usefixtures("worker")


@pytest.fixture
def wiring_with(config: Any) -> Iterator[Callable[..., Wiring]]:
    """Adapters built from the session configuration with some settings changed."""
    made: list[Wiring] = []

    def make(**changes: Any) -> Wiring:
        made.append(bootstrap(config.replace(**changes)))
        return made[-1]

    yield make
    for wiring in made:
        wiring.db.dispose()


def _row(db: Any, notification_id: int) -> Notification:
    with db.transaction() as session:
        row = session.get(Notification, notification_id)
        assert row is not None
        session.expunge(row)
        return row


def _notification_id(db: Any, user_id: uuid.UUID, kind: str) -> int:
    with db.transaction() as session:
        return int(
            session.execute(
                text("SELECT id FROM notifications WHERE user_id = :u AND kind = :k"),
                {"u": user_id, "k": kind},
            ).scalar_one()
        )


def _pending_notification(app: Any, db: Any) -> int:
    """A notification awaiting its webhook, written without queueing a delivery task, so only
    the test delivers it."""
    user = uuid.uuid4()
    provision(app, user)
    with db.transaction() as session:
        [row] = notifications.write(
            session,
            [NewNotification(user, "reward_received", None, Decimal("1.5"), {"status": "ok"})],
            webhooks=True,
        )
    return int(row[0])


def _make_due(db: Any, notification_id: int, seconds_ago: float = 1.0) -> None:
    with db.transaction() as session:
        session.execute(
            text(
                "UPDATE notifications SET webhook_next_at = now() - make_interval(secs => :s)"
                " WHERE id = :id"
            ),
            {"id": notification_id, "s": seconds_ago},
        )


def _correctly_signed(post: ReceivedWebhook) -> bool:
    timestamp = post.headers["x-webhook-timestamp"]
    expected = hmac.new(
        WEBHOOK_SECRET.encode(), f"{timestamp}.{post.body}".encode(), hashlib.sha256
    ).hexdigest()
    return hmac.compare_digest(post.headers["x-webhook-signature"], f"sha256={expected}")


def test_a_webhook_receiver_answering_500_then_200_gets_the_signed_payload_twice_and_the_second_is_recorded_delivered(  # noqa: E501
    app: Any, client: Any, db: Any, webhook_receiver: Any
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "20")
    provision(app, bob)
    webhook_receiver.program([500, 200], user_id=bob, kind="transfer_received")

    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "7.5", "note": "webhook"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202
    tx_id = response.get_json()["transaction_id"]
    wait_settled(db, [tx_id])
    notification_id = _notification_id(db, bob, "transfer_received")
    row = wait_until(
        lambda: (r := _row(db, notification_id)).webhook_status == "delivered" and r, timeout=20
    )

    posts = webhook_receiver.received(notification_id)
    assert len(posts) == 2
    assert posts[0].body == posts[1].body
    assert all(_correctly_signed(p) for p in posts)
    assert all(p.headers["content-type"] == "application/json" for p in posts)
    body = json.loads(posts[0].body)
    assert body["id"] == notification_id
    assert (body["user_id"], body["kind"], body["transaction_id"], body["amount"]) == (
        str(bob),
        "transfer_received",
        tx_id,
        "7.500000",
    )
    assert row.webhook_attempts == 2
    assert row.webhook_delivered_at is not None and row.webhook_next_at is None
    assert row.webhook_last_error.startswith("HTTP 500")

    listed = client.get(
        "/api/admin/webhooks?status=delivered&limit=200", headers=auth(uuid.uuid4(), "admin")
    )
    assert listed.status_code == 200
    [mine] = [i for i in listed.get_json()["items"] if i["notification_id"] == notification_id]
    assert mine["status"] == "delivered" and mine["attempts"] == 2
    assert mine["user_id"] == str(bob) and mine["kind"] == "transfer_received"
    assert mine["last_error"].startswith("HTTP 500") and mine["delivered_at"] is not None


def test_a_permanently_failing_receiver_ends_failed_after_max_attempts(
    app: Any, db: Any, webhook_receiver: Any, wiring_with: Callable[..., Wiring]
) -> None:
    wiring = wiring_with(webhook_max_attempts=3)
    notification_id = _pending_notification(app, db)
    webhook_receiver.program([503] * 10, notification_id=notification_id)

    first = webhooks.deliver(wiring, notification_id)
    assert (first.status, first.retry_in) == ("pending", 2.0)
    assert webhooks.deliver(wiring, notification_id).status == "noop"  # not due yet
    _make_due(db, notification_id)
    assert webhooks.deliver(wiring, notification_id) == webhooks.Attempt("pending", 4.0)
    _make_due(db, notification_id)
    assert webhooks.deliver(wiring, notification_id) == webhooks.Attempt("failed")

    row = _row(db, notification_id)
    assert (row.webhook_status, row.webhook_attempts, row.webhook_next_at) == ("failed", 3, None)
    assert row.webhook_last_error.startswith("HTTP 503")
    _make_due(db, notification_id)
    assert webhooks.deliver(wiring, notification_id).status == "noop"  # failed is final
    assert len(webhook_receiver.received(notification_id)) == 3


def test_a_timeout_counts_as_a_failed_attempt_and_the_retry_delivers(
    app: Any, db: Any, webhook_receiver: Any, wiring_with: Callable[..., Wiring]
) -> None:
    wiring = wiring_with(webhook_timeout_seconds=0.3)
    notification_id = _pending_notification(app, db)
    webhook_receiver.program([Stall(1.5)], notification_id=notification_id)

    assert webhooks.deliver(wiring, notification_id) == webhooks.Attempt("pending", 2.0)
    row = _row(db, notification_id)
    assert row.webhook_status == "pending" and row.webhook_attempts == 1
    assert row.webhook_last_error.startswith("timeout")

    _make_due(db, notification_id)
    assert webhooks.deliver(wiring, notification_id) == webhooks.Attempt("delivered")
    assert _row(db, notification_id).webhook_attempts == 2
    assert len(webhook_receiver.received(notification_id)) == 2


def test_concurrent_and_repeated_deliveries_send_once(
    app: Any, db: Any, wiring: Any, webhook_receiver: Any
) -> None:
    notification_id = _pending_notification(app, db)
    webhook_receiver.program([Stall(0.3)], notification_id=notification_id)
    start = threading.Barrier(4)
    results: list[str] = []

    def deliver() -> None:
        start.wait()
        results.append(webhooks.deliver(wiring, notification_id).status)

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert sorted(results) == ["delivered", "noop", "noop", "noop"]
    assert webhooks.deliver(wiring, notification_id).status == "noop"
    assert len(webhook_receiver.received(notification_id)) == 1


def test_the_beat_job_redelivers_a_due_notification_whose_task_was_lost(
    app: Any, db: Any, wiring: Any, webhook_receiver: Any
) -> None:
    notification_id = _pending_notification(app, db)
    _make_due(db, notification_id, seconds_ago=5)
    assert notification_id in webhooks.due(wiring)

    wiring.queue.send("webhooks.retry_due")
    wait_until(lambda: _row(db, notification_id).webhook_status == "delivered", timeout=20)
    assert len(webhook_receiver.received(notification_id)) == 1


def test_the_admin_list_filters_by_status_and_pages_by_cursor(
    app: Any, client: Any, db: Any
) -> None:
    newest = max(_pending_notification(app, db) for _ in range(2))
    admin = auth(uuid.uuid4(), "admin")
    pending = client.get("/api/admin/webhooks?status=pending", headers=admin).get_json()
    assert pending["items"][0]["notification_id"] == newest
    assert pending["items"][0]["attempts"] == 0 and pending["items"][0]["next_attempt_at"]
    first = client.get("/api/admin/webhooks?limit=1", headers=admin).get_json()
    assert len(first["items"]) == 1 and first["next_cursor"] is not None
    after = client.get(
        f"/api/admin/webhooks?limit=1&cursor={first['next_cursor']}", headers=admin
    ).get_json()
    assert after["items"][0]["notification_id"] < first["items"][0]["notification_id"]
    failed = client.get("/api/admin/webhooks?status=failed&limit=200", headers=admin).get_json()
    assert all(i["status"] == "failed" for i in failed["items"])
    bad = client.get("/api/admin/webhooks?status=lost", headers=admin)
    assert bad.status_code == 422 and bad.get_json()["code"] == "validation_error"


@pytest.mark.parametrize("role", ["user", "service"])
def test_only_admins_see_webhook_deliveries(client: Any, role: str) -> None:
    response = client.get("/api/admin/webhooks", headers=auth(uuid.uuid4(), role))
    assert response.status_code == 403 and response.get_json()["code"] == "forbidden"
