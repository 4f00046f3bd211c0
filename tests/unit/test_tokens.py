import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest

from app.api.auth import TokenRules, decode_token, issue_token
from app.domain.errors import AuthenticationError

SECRET = "unit-secret-0123456789abcdef0123456789abcdef0123456789abcdef"


def test_a_token_round_trips_subject_and_role() -> None:
    user_id = uuid.uuid4()
    assert decode_token(SECRET, issue_token(SECRET, user_id, "service")) == (user_id, "service")


def _claims(**overrides: Any) -> dict[str, Any]:
    """Claims of a valid token without a role, overridden (None drops a claim)."""
    now = int(time.time())
    claims = {
        "sub": str(uuid.uuid4()),
        "iss": "token-wallet",
        "aud": "token-wallet-api",
        "iat": now,
        "exp": now + 3600,
    }
    claims.update(overrides)
    return {name: value for name, value in claims.items() if value is not None}


def test_role_defaults_to_user() -> None:
    user_id = uuid.uuid4()
    token = jwt.encode(_claims(sub=str(user_id)), SECRET, algorithm="HS256")
    assert decode_token(SECRET, token) == (user_id, "user")


@pytest.mark.parametrize(
    "claims",
    [
        _claims(iss="another-issuer"),
        _claims(iss=None),
        _claims(aud="another-api"),
        _claims(aud=["another-api"]),
        _claims(aud=None),
        _claims(iat=None),
        _claims(exp=int(time.time()) + 86400 + 60),
        _claims(exp=4102444800),
        _claims(iat=int(time.time()) - 86400, exp=int(time.time()) + 60),
    ],
    ids=[
        "wrong-iss",
        "no-iss",
        "wrong-aud",
        "wrong-aud-list",
        "no-aud",
        "no-iat",
        "lifetime-over-a-day",
        "lifetime-decades",
        "issued-a-day-before-expiry-plus",
    ],
)
def test_tokens_of_another_issuer_audience_or_beyond_the_lifetime_cap_are_refused(
    claims: dict[str, Any],
) -> None:
    with pytest.raises(AuthenticationError):
        decode_token(SECRET, jwt.encode(claims, SECRET, algorithm="HS256"))


def test_issuer_audience_and_lifetime_cap_come_from_the_rules() -> None:
    rules = TokenRules(issuer="https://idp.example", audience="wallet", max_lifetime_seconds=600)
    user_id = uuid.uuid4()
    token = issue_token(SECRET, user_id, ttl=timedelta(minutes=10), rules=rules)
    assert decode_token(SECRET, token, rules=rules) == (user_id, "user")
    with pytest.raises(AuthenticationError):
        decode_token(SECRET, token)  # the default issuer and audience
    too_long = issue_token(SECRET, user_id, ttl=timedelta(minutes=11), rules=rules)
    with pytest.raises(AuthenticationError, match="lifetime"):
        decode_token(SECRET, too_long, rules=rules)


def test_an_issued_token_carries_iss_aud_iat_and_exp() -> None:
    token = issue_token(SECRET, uuid.uuid4())
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == "token-wallet" and claims["aud"] == "token-wallet-api"
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert claims["iat"] <= datetime.now(UTC).timestamp()


@pytest.mark.parametrize(
    "token",
    [
        issue_token("another-secret-0123456789abcdef0123456789", uuid.uuid4()),
        issue_token(SECRET, uuid.uuid4(), ttl=timedelta(minutes=-5)),
        jwt.encode({"sub": "not-a-uuid", "exp": 4102444800}, SECRET, algorithm="HS256"),
        jwt.encode({"sub": str(uuid.uuid4())}, SECRET, algorithm="HS256"),
        jwt.encode(
            {"sub": str(uuid.uuid4()), "exp": 4102444800, "role": "platform"},
            SECRET,
            algorithm="HS256",
        ),
        jwt.encode({"sub": str(uuid.uuid4()), "exp": 4102444800}, SECRET, algorithm="HS384"),
        "not.a.jwt",
    ],
    ids=["forged", "expired", "bad-subject", "no-exp", "reserved-role", "wrong-alg", "garbage"],
)
def test_invalid_tokens_are_refused(token: str) -> None:
    with pytest.raises(AuthenticationError):
        decode_token(SECRET, token, leeway=0)


def test_a_token_is_verified_once_and_its_expiry_checked_at_every_use(monkeypatch) -> None:
    user_id, calls, original = uuid.uuid4(), [], jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(a) or original(*a, **k))
    token = issue_token(SECRET, user_id, ttl=timedelta(minutes=1))
    assert decode_token(SECRET, token, leeway=0) == (user_id, "user")
    assert decode_token(SECRET, token, leeway=0) == (user_id, "user")
    assert len(calls) == 1
    with pytest.raises(AuthenticationError, match="expired"):
        decode_token(SECRET, token, leeway=0, now=time.time() + 61)
    assert decode_token(SECRET, token, leeway=30, now=time.time() + 61) == (user_id, "user")
