"""Authentication, roles and the problem+json contract."""

import secrets
import uuid
from datetime import timedelta
from typing import Any

import pytest

from app import create_app
from tests.support import auth, token_for


def _is_problem(response, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body = response.get_json()
    assert body["status"] == status and body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer",
        "Basic dXNlcjpwYXNz",
        "Bearer not-a-jwt",
        "Bearer " + token_for(uuid.uuid4(), ttl=timedelta(minutes=-10)),
        "Bearer "
        + __import__("app.api.auth", fromlist=["x"]).issue_token(
            "forged-secret-0123456789abcdef0123456789", uuid.uuid4()
        ),
    ],
    ids=["missing", "empty", "wrong-scheme", "malformed", "expired", "forged"],
)
def test_bad_credentials_get_401_problem(client, header) -> None:
    headers = {"Authorization": header} if header else {}
    _is_problem(client.get("/api/wallet", headers=headers), 401, "unauthorized")


def test_a_service_token_cannot_use_a_user_wallet_endpoint(client) -> None:
    _is_problem(client.get("/api/wallet", headers=auth(uuid.uuid4(), "service")), 403, "forbidden")


def test_unknown_route_is_a_404_problem(client) -> None:
    _is_problem(client.get("/api/nothing-here"), 404, "not_found")


def test_wrong_method_is_a_405_problem(client, user) -> None:
    _is_problem(client.delete("/api/wallet", headers=auth(user)), 405, "method_not_allowed")


def test_readyz_reports_ready_with_database_and_redis(client) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.get_json()["checks"] == {"database": "ok", "redis": "ok"}


def test_readyz_is_503_when_the_database_is_unreachable(config) -> None:
    broken = create_app(config.replace(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["checks"]["database"].startswith("unavailable")
    assert response.get_json()["checks"]["redis"] == "ok"


def test_an_unreachable_database_answers_503_problem_not_500(config) -> None:
    broken = create_app(config.replace(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    response = broken.test_client().get("/api/wallet", headers=auth(uuid.uuid4()))
    _is_problem(response, 503, "service_unavailable")


def test_healthz_answers_without_dependencies(config) -> None:
    broken = create_app(config.replace(database_url="postgresql+psycopg://nobody@127.0.0.1:1/none"))
    assert broken.test_client().get("/healthz").get_json() == {"status": "ok"}


def test_openapi_document_and_docs_page_are_served_offline(client) -> None:
    spec = client.get("/api/openapi.json").get_json()
    assert "/api/wallet" in spec["paths"]
    assert "bearerAuth" in spec["components"]["securitySchemes"]
    page = client.get("/api/docs")
    assert page.status_code == 200
    assert b"/api/docs/static/swagger-ui-bundle.js" in page.data
    assert client.get("/api/docs/static/swagger-ui-bundle.js").status_code == 200


def test_cli_prints_a_token_for_the_given_user_and_role(app) -> None:
    from app.api.auth import decode_token

    user_id = uuid.uuid4()
    result = app.test_cli_runner().invoke(args=["users", "token", str(user_id), "--role", "admin"])
    assert result.exit_code == 0, result.output
    assert decode_token(app.extensions["wallet"].config.jwt_secret, result.output.strip()) == (
        user_id,
        "admin",
    )


def test_a_known_user_reaches_the_view_without_a_database_statement(client, db, user) -> None:
    from tests.integration.test_thin_ingest import statements

    def invalid_transfer() -> Any:  # refused by validation, after authentication, in the view
        return client.post(
            "/api/wallet/transfer", json={}, headers={**auth(user), "Idempotency-Key": "k"}
        )

    with statements(db) as first:
        first_response = invalid_transfer()
    with statements(db) as known:
        known_response = invalid_transfer()
    _is_problem(first_response, 422, "validation_error")
    _is_problem(known_response, 422, "validation_error")
    assert any("INSERT INTO wallets" in s and "ON CONFLICT" in s for s in first)  # get-or-create
    assert known == []


def test_the_limiter_and_authentication_share_one_token_check(client, user, monkeypatch) -> None:
    import jwt

    decoded, original = [], jwt.decode

    def spy(*args: Any, **kwargs: Any) -> Any:
        decoded.append(args[0])
        return original(*args, **kwargs)

    monkeypatch.setattr(jwt, "decode", spy)
    headers = auth(user)
    assert client.get("/api/wallet", headers=headers).status_code == 200
    assert len(decoded) == 1  # the rate limiter's key and authentication share it
    assert client.get("/api/wallet", headers=headers).status_code == 200
    assert len(decoded) == 1  # and the process remembers a verified token
    decoded.clear()
    refused = client.get("/api/wallet", headers={"Authorization": "Bearer x"})
    _is_problem(refused, 401, "unauthorized")
    assert len(decoded) == 1


def test_failed_authentications_are_throttled_per_address_and_audited_once_per_window(
    config,
) -> None:
    from sqlalchemy import select

    from app.models import AuditLog

    app = create_app(config.replace(rate_limit_auth_failures="3/minute"))
    client, db = app.test_client(), app.extensions["wallet"].db
    address, other = (f"198.51.100.{n}" for n in secrets.SystemRandom().sample(range(1, 255), 2))

    def stream(ip: str) -> Any:  # the stream is exempt from the ordinary rate limits
        return client.get(
            "/api/notifications/stream",
            headers={"Authorization": "Bearer nope"},
            environ_base={"REMOTE_ADDR": ip},
        )

    responses = [stream(address) for _ in range(6)]
    assert [r.status_code for r in responses] == [401] * 3 + [429] * 3
    _is_problem(responses[-1], 429, "rate_limited")
    assert 0 < int(responses[-1].headers["Retry-After"]) <= 61
    _is_problem(stream(other), 401, "unauthorized")  # per address
    with db.transaction() as session:
        entries = session.execute(
            select(AuditLog.action, AuditLog.details).where(AuditLog.ip == address)
        ).all()
    assert [action for action, _ in entries] == ["auth.failed", "auth.throttled"]
    assert entries[1].details["failures"] == 4
