"""The notification outbox and API: one notification per settled event, for each user."""

import json
import time
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import select, text

from app.domain.notifications import NewNotification
from app.models import Notification
from app.services import live, notifications
from tests.support import auth, fund, provision, record_unchecked, wait_settled, wait_until, wallet

pytestmark = pytest.mark.usefixtures("worker")


def _kinds(db, user):
    with db.transaction() as session:
        rows = session.execute(
            select(Notification.kind, Notification.amount)
            .where(Notification.user_id == user)
            .order_by(Notification.id)
        ).all()
    return [(k, a) for k, a in rows]


def _service(client, path, body):
    response = client.post(
        f"/api/internal/{path}",
        json=body,
        headers={**auth(uuid.uuid4(), "service"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 202, response.get_json()
    return response.get_json()["transaction_id"]


def test_each_settled_event_notifies_each_affected_user(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "30")
    provision(app, bob)
    sent = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "10"},
        headers={**auth(alice), "Idempotency-Key": "n1", "Prefer": "wait=5"},
    )
    assert sent.get_json()["status"] == "completed"
    fee = _service(client, "charges", {"user_id": str(alice), "amount": "2", "reason": "fee"})
    wait_settled(db, [fee])
    refund = _service(client, "refunds", {"transaction_id": fee})
    wait_settled(db, [refund])
    [failed] = record_unchecked(app, alice, bob, [Decimal(1000)])
    app.extensions["wallet"].queue.kick_settlement(
        wallet(db, alice).id.int % app.extensions["wallet"].config.settlement_shards, force=True
    )
    wait_settled(db, [failed])

    assert _kinds(db, alice) == [
        ("reward_received", Decimal(30)),
        ("transfer_sent", Decimal(-10)),
        ("service_fee_charged", Decimal(-2)),
        ("refund_received", Decimal(2)),
        ("transfer_failed", Decimal(-1000)),
    ]
    assert _kinds(db, bob) == [("transfer_received", Decimal(10))]


def test_list_filter_page_and_mark_read(app, client, db) -> None:
    user = uuid.uuid4()
    for _ in range(3):
        fund(app, user, "1")
    page = client.get("/api/notifications?limit=2", headers=auth(user)).get_json()
    assert [n["kind"] for n in page["items"]] == ["reward_received"] * 2
    assert page["items"][0]["id"] > page["items"][1]["id"]
    rest = client.get(
        f"/api/notifications?limit=2&cursor={page['next_cursor']}", headers=auth(user)
    ).get_json()
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    first = page["items"][0]["id"]
    marked = client.post(f"/api/notifications/{first}/read", headers=auth(user)).get_json()
    assert marked["read"] is True
    unread = client.get("/api/notifications?unread=true", headers=auth(user)).get_json()
    assert [n["id"] for n in unread["items"]] == [page["items"][1]["id"], rest["items"][0]["id"]]
    assert client.post("/api/notifications/read-all", headers=auth(user)).get_json() == {
        "success": True,
        "updated": 2,
    }
    assert (
        client.get("/api/notifications?unread=true", headers=auth(user)).get_json()["items"] == []
    )


def test_someone_elses_notification_cannot_be_read(app, client) -> None:
    owner, stranger = uuid.uuid4(), uuid.uuid4()
    fund(app, owner, "1")
    [item] = client.get("/api/notifications", headers=auth(owner)).get_json()["items"]
    response = client.post(f"/api/notifications/{item['id']}/read", headers=auth(stranger))
    assert response.status_code == 404 and response.get_json()["code"] == "notification_not_found"
    again = client.get("/api/notifications?unread=true", headers=auth(owner)).get_json()
    assert len(again["items"]) == 1


def test_a_rolled_back_settlement_publishes_and_stores_nothing(app, db, wiring) -> None:
    """The recipient's balance would overflow NUMERIC(18,6): every settlement attempt rolls back
    (finally the transaction fails as poison). The recipient hears nothing, ever."""
    sender, whale = uuid.uuid4(), uuid.uuid4()
    fund(app, sender, "2")
    whale_wallet = provision(app, whale)
    with db.transaction() as session:
        session.execute(
            text("UPDATE wallets SET balance = 999999999999 WHERE id = :w"), {"w": whale_wallet}
        )
    pubsub = wiring.redis.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(notifications.channel(whale))
    try:
        [poison] = record_unchecked(app, sender, whale, [Decimal(1)])
        shard = wallet(db, sender).id.int % wiring.config.settlement_shards

        def failed() -> bool:
            wiring.queue.kick_settlement(shard, force=True)
            with db.transaction() as session:
                status = session.scalar(
                    text("SELECT status FROM transactions WHERE id = :i"), {"i": poison}
                )
            return status == "failed"

        wait_until(failed, timeout=60, interval=0.3)
        assert pubsub.get_message(timeout=0.5) is None
        assert _kinds(db, whale) == []
        # the sender hears once, that it failed
        assert _kinds(db, sender)[-1] == ("transfer_failed", Decimal(-1))
        assert [k for k, _ in _kinds(db, sender)].count("transfer_failed") == 1
    finally:
        pubsub.close()
        with db.transaction() as session:
            session.execute(
                text("UPDATE wallets SET balance = 0 WHERE id = :w"), {"w": whale_wallet}
            )


def test_a_stream_catches_up_on_a_notification_whose_push_was_lost(app, wiring) -> None:
    """The worker died right after committing (nothing was published): the open stream still
    delivers it from the database (its process checks every SSE_CATCH_UP_SECONDS, 5 s)."""
    user = uuid.uuid4()
    provision(app, user)
    stream = live.events(wiring, user, after=0, max_seconds=7)
    assert next(stream).startswith("retry:")
    time.sleep(1)  # subscribed by now: only the catch-up can find what follows
    with wiring.db.transaction() as session:
        notifications.write(
            session,
            [NewNotification(user, "reward_received", None, Decimal(3), {})],
            webhooks=False,
        )
    events = [chunk for chunk in stream if chunk.startswith("id:")]
    assert len(events) == 1
    data = json.loads(events[0].split("data: ", 1)[1])
    assert (data["kind"], data["amount"]) == ("reward_received", "3.000000")
