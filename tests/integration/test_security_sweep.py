"""Sweeps over the whole URL map: authentication, roles, and no access to anyone else's data."""

import uuid
from datetime import timedelta

import pytest
from werkzeug.routing import Rule

from app.api.auth import issue_token
from app.domain.accounts import CHAIN_USER_ID, ISSUANCE_USER_ID, PLATFORM_USER_ID
from tests.support import auth, fund, provision, token_for, wait_settled

pytestmark = pytest.mark.usefixtures("worker")
PUBLIC = {
    "health.healthz",
    "health.readyz",
    "health.prometheus_metrics",
    "api-docs.openapi_json",
    "api-docs.openapi_swagger_ui",
    "static",
}


def _endpoints(app, prefix: str = "") -> list[tuple[Rule, str]]:
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint in PUBLIC or not rule.rule.startswith(prefix):
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            found.append((rule, method))
    return found


def _url(rule: Rule, uuid_value: str = "", int_value: int = 1) -> str:
    """The rule's path with its arguments filled: UUIDs with `uuid_value` (or a random one),
    integers with `int_value`."""
    values: dict[str, object] = {}
    for argument in rule.arguments:
        converter = type(rule._converters[argument]).__name__  # noqa: SLF001
        values[argument] = (
            int_value if converter == "IntegerConverter" else (uuid_value or str(uuid.uuid4()))
        )
    return rule.build(values)[1]


def _call(client, method: str, url: str, headers: dict[str, str]):
    return client.open(url, method=method, json={}, headers={**headers, "Idempotency-Key": "k"})


def test_every_non_public_endpoint_refuses_missing_and_bad_tokens(app, client) -> None:
    bad_tokens = [
        {},
        {"Authorization": "Bearer not-a-token"},
        {
            "Authorization": "Bearer "
            + issue_token("forged-secret-0123456789abcdef0123456789", uuid.uuid4())
        },
        {"Authorization": "Bearer " + token_for(uuid.uuid4(), ttl=timedelta(minutes=-5))},
    ]
    swept = _endpoints(app, "/api")
    assert len(swept) >= 20
    for rule, method in swept:
        for headers in bad_tokens:
            response = _call(client, method, _url(rule), headers)
            assert response.status_code == 401, (method, rule.rule, headers)
            assert response.get_json()["code"] == "unauthorized"


def test_service_and_admin_endpoints_refuse_user_tokens(app, client) -> None:
    user = auth(uuid.uuid4())
    swept = _endpoints(app, "/api/internal") + _endpoints(app, "/api/admin")
    assert len(swept) >= 5
    for rule, method in swept:
        response = _call(client, method, _url(rule), user)
        assert response.status_code == 403, (method, rule.rule)


def test_admin_endpoints_refuse_service_tokens(app, client) -> None:
    service = auth(uuid.uuid4(), "service")
    for rule, method in _endpoints(app, "/api/admin"):
        assert _call(client, method, _url(rule), service).status_code == 403, rule.rule


def test_every_non_public_endpoint_refuses_a_token_naming_a_system_account(app, client) -> None:
    swept = _endpoints(app, "/api")
    for subject in (PLATFORM_USER_ID, ISSUANCE_USER_ID, CHAIN_USER_ID):
        for role in ("user", "service", "admin"):
            for rule, method in swept:
                response = _call(client, method, _url(rule), auth(subject, role))
                assert response.status_code == 403, (subject, role, method, rule.rule)
                assert response.get_json()["code"] == "reserved_subject"


def test_no_user_can_reach_another_users_wallet_transactions_or_notifications(
    app, client, db
) -> None:
    alice, bob, mallory = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "10")
    provision(app, bob)
    tx_id = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(bob), "amount": "3"},
        headers={**auth(alice), "Idempotency-Key": "idor"},
    ).get_json()["transaction_id"]
    wait_settled(db, [tx_id])
    notification_id = client.get("/api/notifications", headers=auth(alice)).get_json()["items"][0][
        "id"
    ]
    alice_wallet = str(provision(app, alice))

    # Every URL with an id, filled with Alice's ids, requested by Mallory: never found.
    swept = [
        (rule, method)
        for rule, method in _endpoints(app, "/api")
        if rule.arguments and not rule.rule.startswith(("/api/admin", "/api/internal"))
    ]
    assert swept
    for rule, method in swept:
        url = _url(rule, uuid_value=tx_id, int_value=notification_id)
        response = _call(client, method, url, auth(mallory))
        assert response.status_code == 404, (method, url, response.get_json())

    # Ids in bodies: disconnecting Alice's wallet
    response = client.post(
        "/api/wallet/disconnect", json={"wallet_id": alice_wallet}, headers=auth(mallory)
    )
    assert response.status_code == 404
    # Lists show only Mallory's own things
    mine = client.get("/api/wallet", headers=auth(mallory)).get_json()
    assert mine["wallet"]["id"] != alice_wallet and mine["transaction_history"] == []
    assert client.get("/api/wallet/transactions", headers=auth(mallory)).get_json()["items"] == []
    assert client.get("/api/notifications", headers=auth(mallory)).get_json()["items"] == []
    # …while Alice's notification stays unread
    unread = client.get("/api/notifications?unread=true", headers=auth(alice)).get_json()["items"]
    assert notification_id in [n["id"] for n in unread]
