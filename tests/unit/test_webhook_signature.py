"""Webhook signatures: HMAC-SHA256 over "{timestamp}.{body}", checked with a replay window."""

from app.services.webhooks import backoff_seconds, sign, verify

SECRET = "whsec_test"
BODY = '{"id":1}'
NOW = 1_700_000_000


def test_the_signature_is_hex_hmac_sha256_of_timestamp_dot_body() -> None:
    assert sign(SECRET, NOW, BODY) == (
        "2f441ba4b3b2d50d28a9ab9d9fd8880376ecd1eb5d0435401553f5d8d0a5dcf8"
    )
    assert sign(SECRET, str(NOW), BODY) == sign(SECRET, NOW, BODY)


def test_a_receiver_accepts_the_signature_header_it_was_sent() -> None:
    header = f"sha256={sign(SECRET, NOW, BODY)}"
    assert verify(SECRET, str(NOW), BODY, header, now=NOW + 10)


def test_a_changed_body_timestamp_secret_or_scheme_is_rejected() -> None:
    digest = sign(SECRET, NOW, BODY)
    assert not verify(SECRET, str(NOW), '{"id":2}', f"sha256={digest}", now=NOW)
    assert not verify(SECRET, str(NOW + 1), BODY, f"sha256={digest}", now=NOW)
    assert not verify("other-secret", str(NOW), BODY, f"sha256={digest}", now=NOW)
    assert not verify(SECRET, str(NOW), BODY, f"sha1={digest}", now=NOW)
    assert not verify(SECRET, str(NOW), BODY, digest, now=NOW)
    assert not verify(SECRET, "not-a-number", BODY, f"sha256={digest}", now=NOW)


def test_a_signature_older_than_the_tolerance_is_a_replay() -> None:
    header = f"sha256={sign(SECRET, NOW, BODY)}"
    assert verify(SECRET, str(NOW), BODY, header, now=NOW + 300)
    assert not verify(SECRET, str(NOW), BODY, header, now=NOW + 301)
    assert not verify(SECRET, str(NOW), BODY, header, now=NOW + 60, tolerance_seconds=30)


def test_backoff_doubles_per_attempt_up_to_five_minutes() -> None:
    assert [backoff_seconds(n) for n in (1, 2, 3, 8, 9, 20)] == [2, 4, 8, 256, 300, 300]
