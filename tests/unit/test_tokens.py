import time
import uuid
from datetime import timedelta

import jwt
import pytest

from app.api.auth import decode_token, issue_token
from app.domain.errors import AuthenticationError

SECRET = "unit-secret-0123456789abcdef0123456789abcdef0123456789abcdef"


def test_a_token_round_trips_subject_and_role() -> None:
    user_id = uuid.uuid4()
    assert decode_token(SECRET, issue_token(SECRET, user_id, "service")) == (user_id, "service")


def test_role_defaults_to_user() -> None:
    user_id = uuid.uuid4()
    token = jwt.encode({"sub": str(user_id), "exp": 4102444800}, SECRET, algorithm="HS256")
    assert decode_token(SECRET, token) == (user_id, "user")


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


def test_a_token_is_verified_once_and_its_expiry_checked_at_every_use(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    user_id, calls, original = uuid.uuid4(), [], jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(a) or original(*a, **k))
    token = issue_token(SECRET, user_id, ttl=timedelta(minutes=1))
    assert decode_token(SECRET, token, leeway=0) == (user_id, "user")
    assert decode_token(SECRET, token, leeway=0) == (user_id, "user")
    assert len(calls) == 1
    with pytest.raises(AuthenticationError, match="expired"):
        decode_token(SECRET, token, leeway=0, now=time.time() + 61)
    assert decode_token(SECRET, token, leeway=30, now=time.time() + 61) == (user_id, "user")
