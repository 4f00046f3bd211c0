"""The audit log: every wallet operation leaves an entry; nothing can change or delete one."""

import secrets
import uuid

import pytest
from sqlalchemy import select, text

from app.models import AuditLog
from tests.support import auth, fund, provision

pytestmark = pytest.mark.usefixtures("worker")


def _entries(db, **where):
    with db.transaction() as session:
        query = select(AuditLog)
        for name, value in where.items():
            query = query.where(getattr(AuditLog, name) == value)
        rows = list(session.scalars(query.order_by(AuditLog.id)))
        session.expunge_all()
        return rows


def test_the_audit_log_refuses_update_delete_and_truncate_even_to_its_owner(
    db, owner_db, user, client
) -> None:
    """The trigger, behind the privileges the app role lacks (test_app_role.py)."""
    client.get("/api/wallet", headers=auth(user))
    for statement in (
        "UPDATE audit_log SET action = 'x'",
        "DELETE FROM audit_log",
        "TRUNCATE audit_log",
    ):
        with pytest.raises(Exception, match="append-only"):
            with owner_db.transaction() as session:
                session.execute(text(statement))
    assert _entries(db, actor_id=user)[0].action == "wallet.created"


def test_a_transfer_is_audited_from_submission_to_settlement(app, client, db) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "5")
    provision(app, bob)
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "2"},
        headers={
            **auth(alice),
            "Idempotency-Key": "a1",
            "Prefer": "wait=5",
            "X-Request-ID": "req-audit-1",
        },
    )
    tx_id = response.get_json()["transaction_id"]
    actions = [e.action for e in _entries(db, target=tx_id)]
    assert actions == ["transfer.submitted", "transfer.completed"]
    [submitted] = _entries(db, target=tx_id, action="transfer.submitted")
    assert submitted.actor_id == alice and submitted.request_id == "req-audit-1"
    assert submitted.ip == "127.0.0.1" and submitted.details["amount"] == "2.000000"
    assert submitted.occurred_at is not None


def test_fees_rewards_and_refunds_are_audited_with_the_service_as_actor(app, client, db) -> None:
    user, service = uuid.uuid4(), uuid.uuid4()
    fund(app, user, "5")
    response = client.post(
        "/api/internal/charges",
        json={"user_id": str(user), "amount": "1", "reason": "fee"},
        headers={**auth(service, "service"), "Idempotency-Key": "f"},
    )
    [entry] = _entries(
        db, target=response.get_json()["transaction_id"], action="service_fee.submitted"
    )
    assert entry.actor_id == service
    user_wallet = str(provision(app, user))
    rewards = [
        e
        for e in _entries(db, action="reward.submitted")
        if e.details["credit_wallet"] == user_wallet
    ]
    assert len(rewards) == 1 and rewards[0].actor_id is not None  # the funding service


def test_auth_failures_are_audited_with_ip_and_request_id(client, db) -> None:
    # A fresh address: only the first failure of an address in a window is audited.
    ip = f"192.0.2.{secrets.randbelow(250) + 1}"
    client.get(
        "/api/wallet",
        headers={"Authorization": "Bearer nope", "X-Request-ID": "req-bad"},
        environ_base={"REMOTE_ADDR": ip},
    )
    [entry] = _entries(db, action="auth.failed", request_id="req-bad")
    assert entry.target == "/api/wallet" and entry.ip == ip
    assert entry.details["reason"] == "invalid token"


def test_admins_search_the_audit_log_and_users_cannot(client, db) -> None:
    user = uuid.uuid4()
    client.get("/api/wallet", headers=auth(user))
    admin = auth(uuid.uuid4(), "admin")
    found = client.get(f"/api/admin/audit?actor={user}&action=wallet.created", headers=admin)
    assert found.status_code == 200
    [item] = found.get_json()["items"]
    assert item["action"] == "wallet.created" and item["actor_id"] == str(user)
    page = client.get("/api/admin/audit?limit=2", headers=admin).get_json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    older = client.get(
        f"/api/admin/audit?limit=2&cursor={page['next_cursor']}", headers=admin
    ).get_json()
    assert older["items"][0]["id"] < page["items"][-1]["id"]
    future = client.get("/api/admin/audit?since=2999-01-01T00:00:00Z", headers=admin)
    assert future.get_json()["items"] == []
    assert client.get("/api/admin/audit", headers=auth(user)).status_code == 403
    assert client.get("/api/admin/audit?limit=0", headers=admin).status_code == 422
