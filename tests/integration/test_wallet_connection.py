"""Connecting an external Solana address by signing a Sign-In-With-Solana challenge."""

import base64
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from prometheus_client import REGISTRY
from solders.keypair import Keypair
from sqlalchemy import select, text

from app.models import AuditLog, WalletChallenge
from tests.support import auth, wallet

SIGNATURE_FAMILY = {"invalid_signature", "challenge_not_found", "challenge_expired"}


def _challenge(client: Any, user: uuid.UUID, address: str) -> dict[str, Any]:
    response = client.post(
        "/api/wallet/challenge", json={"wallet_address": address}, headers=auth(user)
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _sign(keypair: Keypair, message: str, encoding: str = "base58") -> str:
    signature = keypair.sign_message(message.encode())
    return str(signature) if encoding == "base58" else base64.b64encode(bytes(signature)).decode()


def _connect(client: Any, user: uuid.UUID, address: str, signature: str, **headers: str) -> Any:
    return client.post(
        "/api/wallet/connect",
        json={"wallet_address": address, "signature": signature},
        headers={**auth(user), **headers},
    )


def _connect_new(client: Any, user: uuid.UUID, keypair: Keypair | None = None) -> Keypair:
    keypair = keypair or Keypair()
    address = str(keypair.pubkey())
    response = _connect(
        client, user, address, _sign(keypair, _challenge(client, user, address)["message"])
    )
    assert response.status_code == 200, response.get_json()
    return keypair


def _disconnect(client: Any, user: uuid.UUID, wallet_id: Any) -> Any:
    return client.post(
        "/api/wallet/disconnect", json={"wallet_id": str(wallet_id)}, headers=auth(user)
    )


def _shown(client: Any, user: uuid.UUID) -> dict[str, Any]:
    return client.get("/api/wallet", headers=auth(user)).get_json()["wallet"]


def _audit(db: Any, user: uuid.UUID) -> list[AuditLog]:
    with db.transaction() as session:
        rows = list(
            session.scalars(
                select(AuditLog)
                .where(AuditLog.actor_id == user, AuditLog.action != "wallet.created")
                .order_by(AuditLog.id)
            )
        )
        session.expunge_all()
        return rows


def _count(name: str, labels: dict[str, str] | None = None) -> float:
    return REGISTRY.get_sample_value(name, labels or {}) or 0.0


def _connections(result: str) -> float:
    return _count("wallet_connections_total", {"result": result})


def _assert_rejected(db: Any, response: Any, user: uuid.UUID, codes: set[str]) -> None:
    body = response.get_json()
    assert 400 <= response.status_code < 500, body
    assert body["code"] in codes, body
    assert response.content_type == "application/problem+json"
    assert wallet(db, user).address is None
    failed = [row for row in _audit(db, user) if row.action == "wallet.connect_failed"]
    assert failed and failed[-1].details["reason"] == body["code"]


@pytest.mark.parametrize("encoding", ["base64", "base58"])
@pytest.mark.parametrize("prefix", ["", "sol:"])
def test_a_signed_challenge_connects_the_address(client, db, user, encoding, prefix) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    challenge = _challenge(client, user, prefix + address)
    connected_before = _connections("connected")

    response = _connect(
        client,
        user,
        prefix + address,
        _sign(keypair, challenge["message"], encoding),
        **{"X-Request-ID": "req-1"},
    )

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    own_wallet = wallet(db, user)
    assert body == {
        "success": True,
        "message": "Wallet connected",
        "wallet_id": str(own_wallet.id),
        "address": address,
    }
    shown = _shown(client, user)
    assert (shown["is_connected"], shown["address"]) == (True, address)
    [audited] = _audit(db, user)
    assert (audited.action, audited.target, audited.details["address"]) == (
        "wallet.connected",
        str(own_wallet.id),
        address,
    )
    assert (audited.request_id, audited.ip) == ("req-1", "127.0.0.1")
    assert _connections("connected") == connected_before + 1
    with db.transaction() as session:
        row = session.scalars(
            select(WalletChallenge).where(WalletChallenge.nonce == challenge["nonce"])
        ).one()
        assert row.consumed_at is not None


def test_the_challenge_is_a_siws_message_bound_to_the_caller_expiring_within_ten_minutes(
    client, db, user, config
) -> None:
    address = str(Keypair().pubkey())
    body = _challenge(client, user, f"sol:{address}")
    lines = body["message"].split("\n")
    # Without APP_DOMAIN, the domain is the request's host (the test client's is "localhost").
    assert lines[0] == "localhost wants you to sign in with your Solana account:"
    assert lines[1] == address
    assert f"Nonce: {body['nonce']}" in lines
    expires_at = datetime.fromisoformat(body["expires_at"])
    assert datetime.now(UTC) < expires_at <= datetime.now(UTC) + timedelta(minutes=10)
    assert f"Expiration Time: {expires_at.strftime('%Y-%m-%dT%H:%M:%SZ')}" in lines
    with db.transaction() as session:
        row = session.scalars(
            select(WalletChallenge).where(WalletChallenge.nonce == body["nonce"])
        ).one()
        assert (row.user_id, row.address, row.message, row.consumed_at) == (
            user,
            address,
            body["message"],
            None,
        )


def test_a_signature_by_another_key_is_rejected_and_counted(client, db, user) -> None:
    address = str(Keypair().pubkey())
    message = _challenge(client, user, address)["message"]
    rejected_before = _connections("rejected")
    response = _connect(client, user, address, _sign(Keypair(), message))
    _assert_rejected(db, response, user, {"invalid_signature"})
    assert response.status_code == 400
    assert _connections("rejected") == rejected_before + 1


def test_a_signature_over_another_message_is_rejected(client, db, user) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    message = _challenge(client, user, address)["message"]
    tampered = message.replace("Version: 1", "Version: 2")
    response = _connect(client, user, address, _sign(keypair, tampered, "base64"))
    _assert_rejected(db, response, user, {"invalid_signature"})


def test_a_wrong_signature_leaves_the_challenge_open_for_a_retry(client, db, user) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    message = _challenge(client, user, address)["message"]
    _assert_rejected(
        db, _connect(client, user, address, _sign(Keypair(), message)), user, {"invalid_signature"}
    )
    assert _connect(client, user, address, _sign(keypair, message)).status_code == 200


def test_a_challenge_for_one_address_does_not_connect_another(client, db, user) -> None:
    asked, other = Keypair(), Keypair()
    message = _challenge(client, user, str(asked.pubkey()))["message"]
    response = _connect(client, user, str(other.pubkey()), _sign(other, message))
    _assert_rejected(db, response, user, SIGNATURE_FAMILY)


def test_an_expired_challenge_is_rejected(client, db, user) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    challenge = _challenge(client, user, address)
    with db.transaction() as session:
        session.execute(
            text(
                "UPDATE wallet_challenges SET expires_at = now() - interval '1 second'"
                " WHERE nonce = :n"
            ),
            {"n": challenge["nonce"]},
        )
    response = _connect(client, user, address, _sign(keypair, challenge["message"]))
    _assert_rejected(db, response, user, {"challenge_expired"})


def test_a_used_nonce_cannot_connect_again(client, db, user) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    signature = _sign(keypair, _challenge(client, user, address)["message"])
    assert _connect(client, user, address, signature).status_code == 200
    assert _disconnect(client, user, wallet(db, user).id).status_code == 200
    response = _connect(client, user, address, signature)
    _assert_rejected(db, response, user, {"challenge_not_found"})


def test_another_users_challenge_cannot_be_used(client, db, user) -> None:
    asker = uuid.uuid4()
    keypair = Keypair()
    address = str(keypair.pubkey())
    signature = _sign(keypair, _challenge(client, asker, address)["message"])
    response = _connect(client, user, address, signature)
    _assert_rejected(db, response, user, {"challenge_not_found"})
    # The asker's challenge was not spent by the intruder.
    assert _connect(client, asker, address, signature).status_code == 200


@pytest.mark.parametrize("address", ["not-base58!", "0OIl" * 11, "sol:abc", "1" * 31])
def test_a_malformed_address_is_422_on_challenge_and_connect(client, db, user, address) -> None:
    challenge = client.post(
        "/api/wallet/challenge", json={"wallet_address": address}, headers=auth(user)
    )
    assert challenge.status_code == 422 and challenge.get_json()["code"] == "invalid_address"
    response = _connect(client, user, address, str(Keypair().sign_message(b"x")))
    assert response.status_code == 422
    _assert_rejected(db, response, user, {"invalid_address"})


@pytest.mark.parametrize("signature", ["garbage!", base64.b64encode(bytes(32)).decode(), "3" * 40])
def test_a_garbage_signature_is_rejected(client, db, user, signature) -> None:
    address = str(Keypair().pubkey())
    _challenge(client, user, address)
    response = _connect(client, user, address, signature)
    _assert_rejected(db, response, user, {"invalid_signature"})


def test_an_address_connected_to_another_user_is_409(client, db, user) -> None:
    owner = uuid.uuid4()
    keypair = _connect_new(client, owner)
    address = str(keypair.pubkey())
    signature = _sign(keypair, _challenge(client, user, address)["message"])
    response = _connect(client, user, address, signature)
    assert response.status_code == 409
    _assert_rejected(db, response, user, {"wallet_already_connected"})
    assert wallet(db, owner).address == address


def test_two_users_racing_for_one_address_connect_it_once(app, db) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    users = [uuid.uuid4() for _ in range(6)]
    with app.test_client() as c:
        signatures = [_sign(keypair, _challenge(c, u, address)["message"]) for u in users]

    def attempt(i: int) -> int:
        with app.test_client() as c:
            return int(_connect(c, users[i], address, signatures[i]).status_code)

    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        statuses = sorted(pool.map(attempt, range(len(users))))
    assert statuses == [200] + [409] * (len(users) - 1)
    assert sum(wallet(db, u).address == address for u in users) == 1


def test_one_signature_sent_concurrently_connects_once(app, db, user) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    with app.test_client() as c:
        signature = _sign(keypair, _challenge(c, user, address)["message"])

    def attempt(_: int) -> int:
        with app.test_client() as c:
            return int(_connect(c, user, address, signature).status_code)

    with ThreadPoolExecutor(max_workers=5) as pool:
        statuses = sorted(pool.map(attempt, range(5)))
    assert statuses == [200, 400, 400, 400, 400]
    assert [r.action for r in _audit(db, user)].count("wallet.connected") == 1


def test_reconnecting_the_connected_address_is_a_no_op(client, db, user) -> None:
    keypair = _connect_new(client, user)
    _connect_new(client, user, keypair)
    assert wallet(db, user).address == str(keypair.pubkey())
    assert [r.action for r in _audit(db, user)] == ["wallet.connected", "wallet.connected"]


def test_connecting_a_new_address_replaces_the_old_one(client, db, user) -> None:
    first = _connect_new(client, user)
    disconnections_before = _count("wallet_disconnections_total")
    second = _connect_new(client, user)
    assert wallet(db, user).address == str(second.pubkey())
    audited = [(r.action, r.details["address"]) for r in _audit(db, user)]
    assert audited == [
        ("wallet.connected", str(first.pubkey())),
        ("wallet.disconnected", str(first.pubkey())),
        ("wallet.connected", str(second.pubkey())),
    ]
    assert _count("wallet_disconnections_total") == disconnections_before + 1


def test_disconnecting_your_wallet_clears_the_address(client, db, user) -> None:
    keypair = _connect_new(client, user)
    own_wallet = wallet(db, user).id
    disconnections_before = _count("wallet_disconnections_total")

    response = _disconnect(client, user, own_wallet)

    assert response.status_code == 200
    assert response.get_json() == {"success": True, "message": "Wallet disconnected"}
    shown = _shown(client, user)
    assert (shown["is_connected"], shown["address"]) == (False, None)
    last = _audit(db, user)[-1]
    assert (last.action, last.target, last.details["address"]) == (
        "wallet.disconnected",
        str(own_wallet),
        str(keypair.pubkey()),
    )
    assert _count("wallet_disconnections_total") == disconnections_before + 1
    again = _disconnect(client, user, own_wallet)
    assert again.status_code == 200 and again.get_json()["success"] is True
    assert len(_audit(db, user)) == 2


def test_disconnecting_someone_elses_wallet_is_404_and_changes_nothing(client, db, user) -> None:
    owner = uuid.uuid4()
    keypair = _connect_new(client, owner)
    _shown(client, user)  # provision the caller
    for wallet_id in (wallet(db, owner).id, uuid.uuid4()):
        response = _disconnect(client, user, wallet_id)
        assert response.status_code == 404 and response.get_json()["code"] == "wallet_not_found"
    assert wallet(db, owner).address == str(keypair.pubkey())
    assert _audit(db, user) == []


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("challenge", {"wallet_address": "x"}),
        ("connect", {"wallet_address": "x", "signature": "y"}),
        ("disconnect", {"wallet_id": str(uuid.uuid4())}),
    ],
)
def test_the_connection_endpoints_require_a_token(client, path, body) -> None:
    response = client.post(f"/api/wallet/{path}", json=body)
    assert response.status_code == 401 and response.get_json()["code"] == "unauthorized"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("challenge", {"wallet_address": "x", "extra": 1}),
        ("challenge", {}),
        ("connect", {"wallet_address": "x"}),
        ("disconnect", {"wallet_id": "not-a-uuid"}),
    ],
)
def test_malformed_bodies_are_422(client, user, path, body) -> None:
    response = client.post(f"/api/wallet/{path}", json=body, headers=auth(user))
    assert response.status_code == 422 and response.get_json()["code"] == "validation_error"


def test_the_sign_in_domain_is_the_pages_host_with_its_port(client, user) -> None:
    address = str(Keypair().pubkey())
    response = client.post(
        "/api/wallet/challenge",
        json={"wallet_address": address},
        headers={**auth(user), "Host": "127.0.0.1:8123"},
    )
    assert response.status_code == 201, response.get_json()
    message = response.get_json()["message"]
    assert message.startswith("127.0.0.1:8123 wants you to sign in with your Solana account:\n")
    assert "\nURI: https://127.0.0.1:8123\n" in message


def test_app_domain_pins_the_sign_in_domain_whatever_the_host(app, user) -> None:
    from app import create_app

    pinned = create_app(app.extensions["wallet"].config.replace(domain="wallet.example.com"))
    response = pinned.test_client().post(
        "/api/wallet/challenge",
        json={"wallet_address": str(Keypair().pubkey())},
        headers={**auth(user), "Host": "evil.example:9999"},
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["message"].startswith("wallet.example.com wants you to sign in")
    pinned.extensions["wallet"].db.dispose()


@pytest.mark.parametrize("encoding", ["text", "base64"])
def test_connect_accepts_the_signed_message_when_it_is_the_challenge(
    client, user, encoding
) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    message = _challenge(client, user, address)["message"]
    signed = message if encoding == "text" else base64.b64encode(message.encode()).decode()
    response = client.post(
        "/api/wallet/connect",
        json={
            "wallet_address": address,
            "signature": _sign(keypair, message),
            "signed_message": signed,
        },
        headers=auth(user),
    )
    assert response.status_code == 200, response.get_json()
    assert _shown(client, user)["address"] == address


def test_a_signed_message_other_than_the_challenge_is_refused_even_with_its_valid_signature(
    client, user
) -> None:
    keypair = Keypair()
    address = str(keypair.pubkey())
    message = _challenge(client, user, address)["message"]
    rewrapped = "\x19Solana Signed Message:\n" + message
    response = client.post(
        "/api/wallet/connect",
        json={
            "wallet_address": address,
            "signature": _sign(keypair, rewrapped),
            "signed_message": base64.b64encode(rewrapped.encode()).decode(),
        },
        headers=auth(user),
    )
    assert response.status_code == 400
    assert response.get_json()["code"] == "signed_message_mismatch"
    assert _shown(client, user)["address"] is None
    # The challenge stays open: the right signature still connects.
    assert _connect(client, user, address, _sign(keypair, message)).status_code == 200
