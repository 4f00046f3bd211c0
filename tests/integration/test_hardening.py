"""Hostile inputs and deployment mistakes (issue 10): bounded metric labels, secrets refused outside
development, strict token claims, malformed input answered 4xx, client addresses behind proxies."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from sqlalchemy import text

from app import create_app
from tests.support import JWT_SECRET, auth, token_for


def _is_problem(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == code


def _random_ip() -> str:
    return "10." + ".".join(str(random.randint(1, 254)) for _ in range(3))


# Item 4: a client cannot mint metric label values -------------------------------------------


def _label_values(name: str, label: str) -> set[str]:
    from prometheus_client import REGISTRY

    return {
        sample.labels[label]
        for metric in REGISTRY.collect()
        if metric.name == name
        for sample in metric.samples
        if label in sample.labels
    }


def test_unknown_methods_and_unmatched_paths_add_no_metric_label_values(app, client) -> None:
    for i in range(3):
        probe = uuid.uuid4().hex
        _is_problem(client.get(f"/probe-{probe}/admin.php?x={probe}"), 404, "not_found")
        assert client.open("/healthz", method=f"PROBE{probe[:6]}").status_code == 405
        client.open(f"/api/wallet/transactions/{uuid.uuid4()}", method=f"X{i}{probe[:4]}")
    rules = {rule.rule for rule in app.url_map.iter_rules()} | {"unmatched"}
    for name in ("http_requests", "http_request_duration_seconds"):
        assert _label_values(name, "endpoint") <= rules
        assert _label_values(name, "method") <= {
            "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"
        }  # fmt: skip
    assert not any("probe" in code.lower() for code in _label_values("api_errors", "code"))


# Item 5: development secrets refused outside development -------------------------------------

DEV_JWT_SECRET = "dev-insecure-secret-change-me-0123456789"


def test_the_app_factory_refuses_a_development_secret_outside_development(config) -> None:
    production = config.replace(app_env="production", jwt_secret=DEV_JWT_SECRET)
    with pytest.raises(RuntimeError, match="JWT_SECRET is a development value"):
        create_app(production)
    create_app(config.replace(app_env="development", jwt_secret=DEV_JWT_SECRET))


def test_the_celery_app_of_worker_and_beat_refuses_a_development_secret(monkeypatch) -> None:
    from workers.bootstrap import make_celery

    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.delenv("WALLET_DATA_KEY")  # falls back to the key published in app/config.py
    with pytest.raises(RuntimeError, match="WALLET_DATA_KEY is a development value"):
        make_celery()


def test_production_starts_with_real_secrets(config) -> None:
    assert config.jwt_secret == JWT_SECRET and len(JWT_SECRET) >= 32
    assert create_app(config.replace(app_env="production")).test_client().get("/healthz").json == {
        "status": "ok"
    }


# Item 13: tokens name this issuer and audience and live at most JWT_MAX_LIFETIME_SECONDS --------


def _claims(**overrides: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims = {
        "sub": str(uuid.uuid4()),
        "iat": now,
        "exp": now + timedelta(hours=1),
        "iss": "token-wallet",
        "aud": "token-wallet-api",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


@pytest.mark.parametrize(
    "claims",
    [
        _claims(iss="someone-else"),
        _claims(iss=None),
        _claims(aud="another-api"),
        _claims(aud=None),
        _claims(iat=None),
        _claims(exp=datetime.now(UTC) + timedelta(hours=24, minutes=5)),
        _claims(exp=datetime.now(UTC) + timedelta(days=3650)),
    ],
    ids=["wrong-iss", "no-iss", "wrong-aud", "no-aud", "no-iat", "over-24h", "ten-years"],
)
def test_tokens_of_another_issuer_or_audience_or_too_long_a_life_are_401(client, claims) -> None:
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    response = client.get("/api/wallet", headers={"Authorization": f"Bearer {token}"})
    _is_problem(response, 401, "unauthorized")


def test_a_token_with_this_issuer_audience_and_a_day_of_life_is_accepted(client) -> None:
    claims = _claims(exp=datetime.now(UTC) + timedelta(hours=23))
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    assert (
        client.get("/api/wallet", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )


def test_the_issuer_and_audience_are_configurable(config) -> None:
    custom = create_app(config.replace(jwt_issuer="https://idp.example", jwt_audience="wallet"))
    client = custom.test_client()
    default = {"Authorization": f"Bearer {token_for(uuid.uuid4())}"}
    _is_problem(client.get("/api/wallet", headers=default), 401, "unauthorized")
    claims = _claims(iss="https://idp.example", aud="wallet")
    token = jwt.encode(claims, JWT_SECRET, algorithm="HS256")
    assert (
        client.get("/api/wallet", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    )
    printed = custom.test_cli_runner().invoke(args=["users", "token"])
    assert printed.exit_code == 0, printed.output
    issued = {"Authorization": f"Bearer {printed.output.strip()}"}
    assert client.get("/api/wallet", headers=issued).status_code == 200


def test_the_cli_refuses_to_issue_a_token_beyond_the_lifetime_cap(app) -> None:
    result = app.test_cli_runner().invoke(args=["users", "token", "--hours", "25"])
    assert result.exit_code != 0
    assert "JWT_MAX_LIFETIME_SECONDS" in result.output


# Item 14: malformed input is a 4xx problem, never a 500 -----------------------------------------


@pytest.fixture
def sender(app) -> uuid.UUID:
    from tests.support import provision

    user = uuid.uuid4()
    provision(app, user)
    return user


@pytest.mark.parametrize(
    "amount",
    [
        "1e999999999",
        "1E+999999999",
        "1e-999999999",
        "\u0661\u0662",  # Arabic-Indic "12"
        "\uff11",  # fullwidth "1"
        "\u0967",  # Devanagari "1"
        " 1",
        "1 ",
        "1\n",
        "\t1",
        "1_000",
        "+1",
        ".5",
        "1.",
        "1e3",
        "0x10",
        "1,5",
        "0001000000000000",
        float("inf"),
        10**40,
        1e300,
        1e-7,
        [1],
        {"amount": 1},
        "[" * 1000 + "]" * 1000,
    ],
)
def test_amounts_outside_the_documented_pattern_are_422(client, sender, amount) -> None:
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(uuid.uuid4()), "amount": amount},
        headers={**auth(sender), "Idempotency-Key": str(uuid.uuid4())},
    )
    _is_problem(response, 422, "validation_error")


@pytest.mark.parametrize(
    "body",
    ["[" * 100_000, "[" * 100_000 + "]" * 100_000, '{"a":' * 50_000 + "1" + "}" * 50_000],
    ids=["unclosed-arrays", "closed-arrays", "objects"],
)
def test_deeply_nested_json_is_a_400_before_authentication(client, body) -> None:
    for path in ("/api/wallet/transfer", "/api/internal/charges", "/api/wallet/challenge"):
        response = client.post(path, data=body, content_type="application/json")
        _is_problem(response, 400, "malformed_json")


def test_a_five_thousand_digit_prefer_wait_is_capped_not_a_500(app, client, worker) -> None:
    from tests.support import fund, provision

    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "5")
    provision(app, bob)
    for prefer in ("wait=" + "9" * 5000, "wait=" + "0" * 4999 + "5"):
        response = client.post(
            "/api/wallet/transfer",
            json={"recipient_id": str(bob), "amount": "1"},
            headers={**auth(alice), "Idempotency-Key": str(uuid.uuid4()), "Prefer": prefer},
        )
        assert response.status_code == 200, response.get_data(as_text=True)[:300]
        assert response.get_json()["status"] == "completed"
        assert response.headers["Preference-Applied"] in ("wait=10", "wait=5")


def test_the_document_gives_one_amount_pattern_without_a_sign_for_positive_amounts(client) -> None:
    schemas = client.get("/api/openapi.json").get_json()["components"]["schemas"]
    [positive] = [
        c for c in schemas["TransferRequest"]["properties"]["amount"]["anyOf"] if "pattern" in c
    ]
    assert positive["pattern"] == r"^[0-9]{1,12}(\.[0-9]{1,6})?$"
    [signed] = [c for c in schemas["Wallet"]["properties"]["balance"]["anyOf"] if "pattern" in c]
    assert signed["pattern"] == r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"


def test_the_document_states_the_idempotency_key_length_and_characters(client, sender) -> None:
    import re

    paths = client.get("/api/openapi.json").get_json()["paths"]
    schemas = [
        parameter["schema"]
        for operations in paths.values()
        for operation in operations.values()
        if isinstance(operation, dict)  # not a path's own parameter list
        for parameter in operation.get("parameters", [])
        if parameter.get("name") == "Idempotency-Key"
    ]
    assert len(schemas) >= 5
    for schema in schemas:
        assert schema["minLength"] == 1 and schema["maxLength"] == 255
        pattern = re.compile(schema["pattern"])
    # the API refuses exactly what the document refuses
    for key, documented in (("k" * 255, True), ("k" * 256, False), ("cl\u00e9", False)):
        assert bool(pattern.fullmatch(key)) is documented
        response = client.post(
            "/api/wallet/transfer",
            json={"recipient_id": str(uuid.uuid4()), "amount": "1"},
            headers={**auth(sender), "Idempotency-Key": key},
        )
        if documented:
            assert response.status_code != 400, response.get_json()
        else:
            _is_problem(response, 400, "idempotency_key_required")


# Item 15: X-Forwarded-For is believed only from TRUSTED_PROXIES proxies ------------------------


def _audited_ip(db: Any, request_id: str) -> str | None:
    with db.transaction() as session:
        return session.execute(
            text("SELECT ip FROM audit_log WHERE request_id = :r AND action = 'auth.failed'"),
            {"r": request_id},
        ).scalar_one_or_none()


@pytest.mark.parametrize("trusted", [0, 1])
def test_the_audited_ip_is_the_peer_unless_a_trusted_proxy_forwards_it(config, db, trusted) -> None:
    app = create_app(config.replace(trusted_proxies=trusted))
    peer, forwarded, request_id = _random_ip(), _random_ip(), f"xff-{uuid.uuid4().hex}"
    response = app.test_client().get(
        "/api/wallet",
        headers={"X-Forwarded-For": forwarded, "X-Request-ID": request_id},
        environ_base={"REMOTE_ADDR": peer},
    )
    _is_problem(response, 401, "unauthorized")
    assert _audited_ip(db, request_id) == (forwarded if trusted else peer)


@pytest.mark.parametrize("trusted", [0, 1])
def test_a_spoofed_x_forwarded_for_escapes_the_rate_limit_only_through_a_trusted_proxy(
    config, trusted
) -> None:
    app = create_app(config.replace(trusted_proxies=trusted, rate_limit_default="3/minute"))
    client, peer = app.test_client(), _random_ip()
    statuses = [
        client.get(
            "/api/wallet",
            headers={"X-Forwarded-For": _random_ip()},
            environ_base={"REMOTE_ADDR": peer},
        ).status_code
        for _ in range(5)
    ]
    # Without a trusted proxy every request counts against the peer; through one, each forwarded
    # client has its own window.
    assert statuses == ([401] * 3 + [429] * 2 if not trusted else [401] * 5)


def test_only_the_trusted_number_of_hops_is_believed(config, db) -> None:
    app = create_app(config.replace(trusted_proxies=1))
    spoofed, client_ip, request_id = _random_ip(), _random_ip(), f"xff-{uuid.uuid4().hex}"
    app.test_client().get(  # the client sent its own X-Forwarded-For; the proxy appended the peer
        "/api/wallet",
        headers={"X-Forwarded-For": f"{spoofed}, {client_ip}", "X-Request-ID": request_id},
        environ_base={"REMOTE_ADDR": _random_ip()},
    )
    assert _audited_ip(db, request_id) == client_ip
