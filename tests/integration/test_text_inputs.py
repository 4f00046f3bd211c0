"""Free text PostgreSQL cannot store (NUL, U+0000) is refused at the boundary with a 422
problem+json instead of failing the insert with a 500 (found by the API fuzz)."""

import uuid

import pytest

from tests.support import auth

NUL_MESSAGE = "Must not contain NUL (U+0000) characters."


@pytest.mark.parametrize(
    ("role", "path", "body"),
    [
        ("user", "/api/wallet/transfer", {"amount": "1", "note": "a\u0000b"}),
        ("service", "/api/internal/charges", {"amount": "1", "reason": "a\u0000b"}),
        ("service", "/api/internal/rewards", {"amount": "1", "reason": "a\u0000b"}),
    ],
)
def test_text_with_a_nul_character_is_refused_as_invalid_not_a_server_error(
    client, role: str, path: str, body: dict[str, str]
) -> None:
    user = uuid.uuid4()
    key = "recipient_id" if "note" in body else "user_id"
    response = client.post(
        path,
        json={key: str(uuid.uuid4()), **body},
        headers={**auth(user, role), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.get_json()
    problem = response.get_json()
    assert problem["code"] == "validation_error"
    assert set(problem["errors"]) == set(body) - {"amount"}


def test_a_nul_character_in_one_reward_of_a_batch_is_refused(client) -> None:
    items = [
        {"user_id": str(uuid.uuid4()), "amount": "1", "reason": "fine"},
        {"user_id": str(uuid.uuid4()), "amount": "1", "reason": "\u0000"},
    ]
    response = client.post(
        "/api/internal/rewards",
        json={"items": items},
        headers={**auth(uuid.uuid4(), "service"), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"] == {"items": {"1": {"reason": [NUL_MESSAGE]}}}


@pytest.mark.parametrize(
    ("role", "path", "body"),
    [
        ("user", "/api/wallet/challenge", {"wallet_address": "a\u0000b"}),
        ("user", "/api/wallet/connect", {"wallet_address": "a\u0000b", "signature": "x"}),
    ],
)
def test_a_nul_character_in_a_wallet_address_is_refused_as_invalid(
    client, role: str, path: str, body: dict[str, str]
) -> None:
    response = client.post(path, json=body, headers=auth(uuid.uuid4(), role))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["errors"]["wallet_address"] == [NUL_MESSAGE]


@pytest.mark.parametrize("param", ["action", "target"])
def test_a_nul_character_in_an_audit_filter_is_refused_as_invalid(client, param: str) -> None:
    response = client.get(f"/api/admin/audit?{param}=a%00b", headers=auth(uuid.uuid4(), "admin"))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "validation_error"


BEYOND_BIGINT = str(2**63)


@pytest.mark.parametrize(
    ("role", "path"),
    [
        ("user", f"/api/notifications?cursor={BEYOND_BIGINT}"),
        ("admin", f"/api/admin/webhooks?cursor={BEYOND_BIGINT}"),
        ("admin", f"/api/admin/audit?cursor={BEYOND_BIGINT}"),
    ],
)
def test_a_cursor_beyond_the_id_range_is_refused_as_invalid(client, role: str, path: str) -> None:
    response = client.get(path, headers=auth(uuid.uuid4(), role))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "validation_error"


def test_a_notification_id_beyond_the_id_range_is_not_found(client) -> None:
    response = client.post(
        f"/api/notifications/{BEYOND_BIGINT}/read", headers=auth(uuid.uuid4(), "user")
    )
    assert response.status_code == 404
    assert response.mimetype == "application/problem+json"
