"""Connecting an external Solana address to the caller's wallet (Sign-In With Solana) and
disconnecting it. Every change, and every rejected attempt, is audited and counted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.chain import siws
from app.config import Config
from app.db import Database
from app.domain.errors import (
    InvalidSignatureError,
    WalletAlreadyConnectedError,
    WalletNotFoundError,
)
from app.metrics import WALLET_CONNECTIONS, WALLET_DISCONNECTIONS
from app.models import Wallet, WalletChallenge
from app.sealing import Keyring
from app.services import audit

ADDRESS_UNIQUE = "uq_wallets_address"
# Rejections of the caller's proof; anything else (a database outage) is not an attempt to audit.
REJECTIONS = (siws.InvalidAddressError, InvalidSignatureError, WalletAlreadyConnectedError)
AUDITED_INPUT_MAX = 128


@dataclass(frozen=True)
class Connection:
    wallet_id: uuid.UUID
    address: str
    replaced: str | None  # the address this one replaced, if another was connected


@dataclass(frozen=True)
class _Audit:
    """Audit entries about one wallet, by one actor (request id and IP come from the request)."""

    actor_id: uuid.UUID
    wallet_id: uuid.UUID

    def record(self, session: Session, action: str, **details: Any) -> None:
        audit.record(session, action, actor_id=self.actor_id, target=self.wallet_id, **details)


def issue_challenge(
    db: Database, config: Config, user_id: uuid.UUID, address: str, domain: str
) -> siws.Challenge:
    """A single-use message for `user_id` to sign with `address`'s key, naming `domain` (the
    host, with its port, of the page that asks: browser wallets refuse any other)."""
    challenge = siws.new_challenge(
        domain, address, datetime.now(UTC), chain_id=config.solana_chain_id
    )
    with db.transaction() as session:
        session.add(
            WalletChallenge(
                user_id=user_id,
                address=challenge.address,
                nonce=challenge.nonce,
                message=challenge.message,
                expires_at=challenge.expires_at,
            )
        )
    return challenge


def connect(
    db: Database,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    address: str,
    signature: str,
    keyring: Keyring | None = None,
    *,
    signed_message: str | None = None,
) -> Connection:
    """Connect `address` to the caller's wallet once `signature` proves they hold its key. The
    proof (signed message and signature) is kept sealed in `wallets.data` when a keyring is given.
    `signed_message`, what the wallet reports it signed, must be the issued challenge when sent.

    A wrong signature leaves the challenge open until it expires (a retry needs no new one); a
    successful one consumes it. Reconnecting the connected address is a no-op; a different
    address replaces the connected one.
    """
    audit = _Audit(user_id, wallet_id)
    try:
        connection = _connect(db, audit, address, signature, keyring, signed_message)
    except REJECTIONS as error:
        # The main transaction rolled back; the failed attempt is recorded in its own.
        with db.transaction() as session:
            audit.record(
                session,
                "wallet.connect_failed",
                address=address[:AUDITED_INPUT_MAX],
                reason=error.code,
            )
        WALLET_CONNECTIONS.labels(result="rejected").inc()
        raise
    WALLET_CONNECTIONS.labels(result="connected").inc()
    if connection.replaced is not None:
        WALLET_DISCONNECTIONS.inc()
    return connection


def _connect(
    db: Database,
    audit: _Audit,
    address: str,
    signature: str,
    keyring: Keyring | None,
    signed_message: str | None,
) -> Connection:
    user_id, wallet_id = audit.actor_id, audit.wallet_id
    normalised = siws.normalise_address(address)
    signed = siws.decode_signature(signature)
    now = datetime.now(UTC)
    try:
        with db.transaction() as session:
            challenge = _lock_open_challenge(session, user_id, normalised)
            siws.ensure_live(challenge.expires_at, now)
            siws.ensure_signed_message(challenge.message, signed_message)
            siws.verify(normalised, challenge.message, signed)
            challenge.consumed_at = now
            wallet = _lock_own_wallet(session, user_id, wallet_id)
            taken = session.scalar(
                select(Wallet.id).where(Wallet.address == normalised, Wallet.id != wallet_id)
            )
            if taken is not None:
                raise WalletAlreadyConnectedError()
            previous = wallet.address
            if previous is not None and previous != normalised:
                audit.record(session, "wallet.disconnected", address=previous, reason="replaced")
            if previous != normalised:  # the withdrawal cooldown starts (not on a reconnect)
                wallet.address_connected_at = now
            wallet.address = normalised
            if keyring is not None:
                proof = {
                    "address": normalised,
                    "message": challenge.message,
                    "signature": signature,
                    "connected_at": now.isoformat(),
                }
                wallet.data = {**wallet.data, "connection_proof": keyring.seal(proof)}
            # Flush here so a concurrent connect of the same address fails inside this block.
            session.flush()
            audit.record(session, "wallet.connected", address=normalised, nonce=challenge.nonce)
    except IntegrityError as exc:
        # Another wallet took the address after our check: the unique constraint decides.
        if getattr(getattr(exc.orig, "diag", None), "constraint_name", None) == ADDRESS_UNIQUE:
            raise WalletAlreadyConnectedError() from None
        raise
    replaced = previous if previous != normalised else None
    return Connection(wallet_id=wallet_id, address=normalised, replaced=replaced)


def disconnect(
    db: Database,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    target_wallet_id: uuid.UUID,
) -> str | None:
    """Clear the connected address of the caller's own wallet; the address removed, or None when
    none was connected. Anyone else's wallet id is 404, as if it did not exist."""
    if target_wallet_id != wallet_id:
        raise WalletNotFoundError()
    with db.transaction() as session:
        wallet = _lock_own_wallet(session, user_id, wallet_id)
        previous = wallet.address
        if previous is None:
            return None
        wallet.address = None
        wallet.address_connected_at = None
        wallet.data = {k: v for k, v in wallet.data.items() if k != "connection_proof"}
        _Audit(user_id, wallet_id).record(
            session, "wallet.disconnected", address=previous, reason="requested"
        )
    WALLET_DISCONNECTIONS.inc()
    return previous


def _lock_open_challenge(session: Session, user_id: uuid.UUID, address: str) -> WalletChallenge:
    """The caller's latest unconsumed challenge for `address`, locked so its nonce is used once
    even by racing requests."""
    challenge = session.scalars(
        select(WalletChallenge)
        .where(
            WalletChallenge.user_id == user_id,
            WalletChallenge.address == address,
            WalletChallenge.consumed_at.is_(None),
        )
        .order_by(WalletChallenge.id.desc())
        .limit(1)
        .with_for_update()
    ).first()
    if challenge is None:
        raise siws.ChallengeNotFoundError()
    return challenge


def _lock_own_wallet(session: Session, user_id: uuid.UUID, wallet_id: uuid.UUID) -> Wallet:
    wallet = session.get(Wallet, wallet_id, with_for_update=True)
    if wallet is None or wallet.user_id != user_id:
        raise WalletNotFoundError()
    return wallet
