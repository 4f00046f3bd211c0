"""Transaction history: filters and a cursor that stays stable while new transactions arrive."""

import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text

from app.api.schemas import TransactionSummarySchema
from app.services import history
from app.services.recording import shard_of
from tests.support import (
    auth,
    fund,
    post_transfer,
    provision,
    record_unchecked,
    wait_settled,
)

pytestmark = pytest.mark.usefixtures("worker")


def test_cursor_pages_are_stable_while_new_transactions_arrive(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    provision(app, bob)

    def send(amount: str) -> str:
        return str(
            client.post(
                "/api/wallet/transfer",
                json={"recipient_id": str(bob), "amount": amount},
                headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
            ).get_json()["transaction_id"]
        )

    sent = [send("1") for _ in range(7)]
    wait_settled(db, sent)
    page1 = client.get("/api/wallet/transactions?limit=3&type=transfer", headers=auth(alice))
    body1 = page1.get_json()
    assert [i["id"] for i in body1["items"]] == sent[::-1][:3]
    newer = send("2")  # arrives between page fetches
    body2 = client.get(
        f"/api/wallet/transactions?limit=3&type=transfer&cursor={body1['next_cursor']}",
        headers=auth(alice),
    ).get_json()
    body3 = client.get(
        f"/api/wallet/transactions?limit=3&type=transfer&cursor={body2['next_cursor']}",
        headers=auth(alice),
    ).get_json()
    seen = [i["id"] for i in body1["items"] + body2["items"] + body3["items"]]
    assert seen == sent[::-1] and newer not in seen
    assert body3["next_cursor"] is None


def test_filters_by_type_status_and_time(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "1"},
        headers={**auth(alice), "Idempotency-Key": "a", "Prefer": "wait=5"},
    )
    rewards = client.get("/api/wallet/transactions?type=reward", headers=auth(alice)).get_json()
    assert [i["type"] for i in rewards["items"]] == ["reward"]
    completed = client.get("/api/wallet/transactions?status=completed", headers=auth(alice))
    assert len(completed.get_json()["items"]) == 2
    future = client.get("/api/wallet/transactions?since=2999-01-01T00:00:00Z", headers=auth(alice))
    assert future.get_json()["items"] == []
    bad = client.get("/api/wallet/transactions?type=bogus&limit=1000", headers=auth(alice))
    assert bad.status_code == 422 and {"type", "limit"} <= bad.get_json()["errors"]["query"].keys()
    bad_cursor = client.get("/api/wallet/transactions?cursor=@@@", headers=auth(alice))
    assert bad_cursor.status_code == 422 and bad_cursor.get_json()["code"] == "invalid_cursor"


def test_each_side_sees_the_other_party_and_system_accounts_by_name(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    tx_id = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "4"},
        headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4())},
    ).get_json()["transaction_id"]
    wait_settled(db, [tx_id])
    sent = client.get("/api/wallet/transactions", headers=auth(alice)).get_json()["items"]
    assert [(i["type"], i["counterparty"]) for i in sent] == [
        ("transfer", str(bob)),
        ("reward", "platform"),
    ]
    received = client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(bob)).get_json()
    assert (received["amount"], received["counterparty"]) == ("4.000000", str(alice))


def test_the_overview_history_is_the_schemas_dump_of_the_same_transactions(
    app, client, db, owner_db
) -> None:
    """GET /api/wallet's history is built by the database in its wire form; it must read exactly
    as the documented schema dumps the same transactions (signed amounts, six places, Python's
    isoformat, which drops a zero fraction of a second; notes with quotes and non-ASCII)."""
    sender, recipient = uuid.uuid4(), uuid.uuid4()
    fund(app, sender, "10")
    provision(app, recipient)
    sent = post_transfer(client, sender, recipient, "1.5", note='lunch "à la carte" \\ ✓')
    (beyond,) = record_unchecked(app, sender, recipient, [Decimal("100")])
    ids = [sent.get_json()["transaction_id"], str(beyond)]
    wiring = app.extensions["wallet"]
    shard = shard_of(provision(app, sender), wiring.config.settlement_shards)
    wiring.queue.kick_settlement(shard, force=True)
    wait_settled(db, ids)
    with owner_db.transaction() as session:  # a timestamp on a whole second
        session.execute(
            text(
                "UPDATE transactions SET created_at = date_trunc('second', created_at)"
                " WHERE id = :id"
            ),
            {"id": ids[0]},
        )

    for user in (sender, recipient):
        shown = client.get("/api/wallet", headers=auth(user)).get_json()["transaction_history"]
        with db.statement() as conn:
            items, _ = history.list_transactions(conn, provision(app, user))
        assert shown == TransactionSummarySchema(many=True).dump(items)

    mine = client.get("/api/wallet", headers=auth(sender)).get_json()["transaction_history"]
    by_id = {item["id"]: item for item in mine}
    assert by_id[ids[0]]["amount"] == "-1.500000"
    assert "." not in by_id[ids[0]]["timestamp"]
    assert by_id[ids[1]]["failure_reason"] == "insufficient_balance"
    assert sorted(item["type"] for item in mine) == ["reward", "transfer", "transfer"]
