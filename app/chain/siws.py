"""Sign-In With Solana: the message a user signs to prove they own an address, and its checks.

Pure rules, no I/O: the exact message text, address normalisation, signature decoding and the
ed25519 check. solders is used only to parse base58 values and PyNaCl only to verify.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from nacl.exceptions import CryptoError
from nacl.signing import VerifyKey
from solders.pubkey import Pubkey
from solders.signature import Signature

from app.domain.errors import InvalidSignatureError, WalletError

# Long enough to open a wallet and approve; the issue caps it at ten minutes.
CHALLENGE_TTL = timedelta(minutes=5)
MAX_CHALLENGE_TTL = timedelta(minutes=10)
DEFAULT_CHAIN_ID = "mainnet"
STATEMENT = "Connect this Solana account to your token wallet."
ADDRESS_PREFIX = "sol:"
NONCE_LENGTH = 16
NONCE_ALPHABET = string.ascii_letters + string.digits
SIGNATURE_LENGTH = 64
# A host name or IPv4 address, or a bracketed IPv6 address, with an optional port.
_HOST = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?|\[[0-9A-Fa-f:.]{2,45}\])(?::[0-9]{1,5})?"
)


class InvalidAddressError(WalletError):
    code = "invalid_address"
    status = 422
    title = "Not a Solana address"


class ChallengeNotFoundError(InvalidSignatureError):
    """No open challenge for this user and address: never issued, issued to someone else, or
    already used (a nonce is single use)."""

    code = "challenge_not_found"
    title = "No open challenge for this address"


class SignedMessageMismatchError(InvalidSignatureError):
    """The wallet says it signed something other than the issued challenge (some wallets
    prefix or rewrap the message): the signature cannot prove the challenge."""

    code = "signed_message_mismatch"
    title = "The signed message is not the issued challenge"


class InvalidHostError(WalletError):
    code = "invalid_host"
    status = 400
    title = "The request's Host cannot name a sign-in domain; set APP_DOMAIN"


class ChallengeExpiredError(InvalidSignatureError):
    code = "challenge_expired"
    title = "The challenge has expired"


@dataclass(frozen=True)
class Challenge:
    domain: str
    address: str
    nonce: str
    issued_at: datetime
    expires_at: datetime
    chain_id: str = DEFAULT_CHAIN_ID
    statement: str = STATEMENT

    @property
    def message(self) -> str:
        """The text the wallet shows and signs (wallet-standard / Phantom SIWS layout)."""
        return "\n".join(
            [
                f"{self.domain} wants you to sign in with your Solana account:",
                self.address,
                "",
                self.statement,
                "",
                f"URI: https://{self.domain}",
                "Version: 1",
                f"Chain ID: {self.chain_id}",
                f"Nonce: {self.nonce}",
                f"Issued At: {_iso(self.issued_at)}",
                f"Expiration Time: {_iso(self.expires_at)}",
            ]
        )


def new_challenge(
    domain: str,
    address: str,
    now: datetime,
    *,
    ttl: timedelta = CHALLENGE_TTL,
    chain_id: str = DEFAULT_CHAIN_ID,
) -> Challenge:
    """A fresh challenge for `address` (normalised here), valid for `ttl` from `now`."""
    if not timedelta(0) < ttl <= MAX_CHALLENGE_TTL:
        raise ValueError(f"challenge ttl must be within (0, {MAX_CHALLENGE_TTL}]")
    # Whole seconds, so the stored expiry is exactly the one written in the message.
    issued_at = now.astimezone(UTC).replace(microsecond=0)
    return Challenge(
        domain=domain,
        address=normalise_address(address),
        nonce=new_nonce(),
        issued_at=issued_at,
        expires_at=issued_at + ttl,
        chain_id=chain_id,
    )


def new_nonce() -> str:
    return "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))


def normalise_address(raw: str) -> str:
    """The canonical base58 form of a 32-byte public key, with or without a `sol:` prefix."""
    text = raw.strip()
    if text.startswith(ADDRESS_PREFIX):
        text = text[len(ADDRESS_PREFIX) :]
    try:
        return str(Pubkey.from_string(text))
    except ValueError:
        raise InvalidAddressError("wallet_address is not a base58 Solana public key") from None


def decode_signature(raw: str) -> bytes:
    """A 64-byte ed25519 signature sent as base58 (most wallets) or base64."""
    text = raw.strip()
    try:
        return bytes(Signature.from_string(text))
    except ValueError:
        pass
    try:
        decoded = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if len(decoded) != SIGNATURE_LENGTH:
        raise InvalidSignatureError("signature must be 64 bytes, base58 or base64")
    return decoded


def domain_of(host: str) -> str:
    """The sign-in domain for a request's Host header: the host with its port, as the browser
    shows the page's origin (Phantom refuses a message naming anything else without prompting)."""
    if not _HOST.fullmatch(host):
        raise InvalidHostError()
    return host.lower()


def ensure_signed_message(issued: str, signed: str | None) -> None:
    """When the wallet reports what it signed (`signedMessage`: the text itself, or its bytes in
    base64), it must be exactly the issued challenge."""
    if signed is None or signed == issued:
        return
    try:
        decoded = base64.b64decode(signed, validate=True)
    except (binascii.Error, ValueError):
        decoded = b""
    if decoded != issued.encode():
        raise SignedMessageMismatchError()


def ensure_live(expires_at: datetime, now: datetime) -> None:
    if now >= expires_at:
        raise ChallengeExpiredError()


def verify(address: str, message: str, signature: bytes) -> None:
    """Raise `InvalidSignatureError` unless `signature` is `address`'s signature of `message`."""
    try:
        VerifyKey(bytes(Pubkey.from_string(address))).verify(message.encode(), signature)
    except (CryptoError, ValueError):
        raise InvalidSignatureError("signature does not match the challenge") from None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
