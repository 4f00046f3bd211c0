"""Sign-In With Solana: message text, address normalisation, signature decoding and checks."""

import base64
from datetime import UTC, datetime, timedelta

import pytest
from solders.keypair import Keypair

from app.chain import siws
from app.domain.errors import InvalidSignatureError

NOW = datetime(2025, 3, 1, 12, 30, 45, 987654, tzinfo=UTC)


def test_the_message_has_the_siws_lines_in_order() -> None:
    address = str(Keypair().pubkey())
    challenge = siws.new_challenge("wallet.example", address, NOW)
    assert challenge.message.split("\n") == [
        "wallet.example wants you to sign in with your Solana account:",
        address,
        "",
        siws.STATEMENT,
        "",
        "URI: https://wallet.example",
        "Version: 1",
        "Chain ID: mainnet",
        f"Nonce: {challenge.nonce}",
        "Issued At: 2025-03-01T12:30:45Z",
        "Expiration Time: 2025-03-01T12:35:45Z",
    ]


def test_the_expiry_in_the_message_is_the_stored_one_and_within_ten_minutes() -> None:
    challenge = siws.new_challenge("localhost", str(Keypair().pubkey()), NOW)
    assert challenge.issued_at == NOW.replace(microsecond=0)
    assert challenge.expires_at - challenge.issued_at == siws.CHALLENGE_TTL
    assert siws.CHALLENGE_TTL <= timedelta(minutes=10)
    with pytest.raises(ValueError):
        siws.new_challenge("localhost", str(Keypair().pubkey()), NOW, ttl=timedelta(minutes=11))


def test_nonces_are_sixteen_alphanumerics_and_never_repeat() -> None:
    nonces = {siws.new_nonce() for _ in range(1000)}
    assert len(nonces) == 1000
    assert all(len(n) == 16 and n.isalnum() and n.isascii() for n in nonces)


def test_an_address_is_accepted_with_or_without_the_sol_prefix() -> None:
    address = str(Keypair().pubkey())
    assert siws.normalise_address(address) == address
    assert siws.normalise_address(f"sol:{address}") == address
    assert siws.normalise_address(f"  {address} ") == address


@pytest.mark.parametrize(
    "raw",
    ["", "sol:", "not-base58", "0OIl" * 11, "1" * 31, "1" * 33, "z" * 45, "sol:sol:x"],
)
def test_anything_but_a_32_byte_base58_key_is_an_invalid_address(raw: str) -> None:
    with pytest.raises(siws.InvalidAddressError) as raised:
        siws.normalise_address(raw)
    assert (raised.value.code, raised.value.status) == ("invalid_address", 422)


def test_a_signature_decodes_from_base58_and_from_base64() -> None:
    signature = Keypair().sign_message(b"hello")
    raw = bytes(signature)
    assert siws.decode_signature(str(signature)) == raw
    assert siws.decode_signature(base64.b64encode(raw).decode()) == raw


@pytest.mark.parametrize(
    "raw",
    ["", "garbage!", base64.b64encode(bytes(63)).decode(), base64.b64encode(bytes(65)).decode()],
)
def test_a_signature_that_is_not_64_bytes_is_invalid(raw: str) -> None:
    with pytest.raises(InvalidSignatureError):
        siws.decode_signature(raw)


def test_only_the_addresss_key_signing_the_exact_message_verifies() -> None:
    keypair, other = Keypair(), Keypair()
    address = str(keypair.pubkey())
    message = siws.new_challenge("localhost", address, NOW).message
    siws.verify(address, message, bytes(keypair.sign_message(message.encode())))
    with pytest.raises(InvalidSignatureError):
        siws.verify(address, message, bytes(other.sign_message(message.encode())))
    with pytest.raises(InvalidSignatureError):
        siws.verify(address, message + " ", bytes(keypair.sign_message(message.encode())))


def test_a_challenge_is_live_until_its_expiry() -> None:
    challenge = siws.new_challenge("localhost", str(Keypair().pubkey()), NOW)
    siws.ensure_live(challenge.expires_at, challenge.expires_at - timedelta(seconds=1))
    with pytest.raises(siws.ChallengeExpiredError) as raised:
        siws.ensure_live(challenge.expires_at, challenge.expires_at)
    assert isinstance(raised.value, InvalidSignatureError)


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("localhost", "localhost"),
        ("127.0.0.1:8000", "127.0.0.1:8000"),
        ("Wallet.Example.com", "wallet.example.com"),
        ("[::1]:8443", "[::1]:8443"),
    ],
)
def test_the_sign_in_domain_is_the_host_with_its_port(host: str, domain: str) -> None:
    assert siws.domain_of(host) == domain


@pytest.mark.parametrize(
    "host", ["", "evil.example\nURI: x", "a b", "host:port", "-leading.example", "x:123456"]
)
def test_a_host_that_cannot_be_a_domain_is_refused(host: str) -> None:
    with pytest.raises(siws.InvalidHostError):
        siws.domain_of(host)


def test_the_signed_message_must_be_the_challenge_as_text_or_base64() -> None:
    issued = siws.new_challenge("localhost", str(Keypair().pubkey()), NOW).message
    siws.ensure_signed_message(issued, None)
    siws.ensure_signed_message(issued, issued)
    siws.ensure_signed_message(issued, base64.b64encode(issued.encode()).decode())
    for other in (issued + " ", base64.b64encode(b"prefix" + issued.encode()).decode(), "!!"):
        with pytest.raises(siws.SignedMessageMismatchError):
            siws.ensure_signed_message(issued, other)
