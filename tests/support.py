"""Helpers for pipeline tests: funding users through the real pipeline, waiting, inspecting."""

from __future__ import annotations

import base64
import secrets
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from solders.keypair import Keypair
from sqlalchemy import func, select, text

from app.models import LedgerEntry, Transaction, Wallet
from app.services import movement, reservations, transfers
from app.services.recording import shard_of

JWT_SECRET = "test-secret-" + secrets.token_hex(16)


def token_for(user_id: uuid.UUID, role: str = "user", **kwargs: Any) -> str:
    from app.api.auth import issue_token

    return issue_token(JWT_SECRET, user_id, role, **kwargs)


def auth(user_id: uuid.UUID, role: str = "user") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(user_id, role)}"}


def post_transfer(
    client: Any,
    sender: uuid.UUID,
    recipient: uuid.UUID,
    amount: str,
    key: str | None = None,
    *,
    note: str | None = None,
    **headers: str,
) -> Any:
    """POST /api/wallet/transfer as `sender` (a fresh Idempotency-Key unless `key` is given);
    the response."""
    body = {"recipient_id": str(recipient), "amount": amount}
    if note is not None:
        body["note"] = note
    return client.post(
        "/api/wallet/transfer",
        json=body,
        headers={**auth(sender), "Idempotency-Key": key or str(uuid.uuid4()), **headers},
    )


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s")
        time.sleep(interval)


def status_of(db: Any, tx_id: uuid.UUID | str) -> str:
    with db.transaction() as session:
        return str(session.scalar(select(Transaction.status).where(Transaction.id == tx_id)))


def wait_settled(db: Any, tx_ids: list[Any], timeout: float = 30.0) -> None:
    ids = [uuid.UUID(str(t)) for t in tx_ids]

    def settled() -> bool:
        with db.transaction() as session:
            pending = session.scalar(
                select(func.count())
                .select_from(Transaction)
                .where(Transaction.id.in_(ids), Transaction.status == "pending")
            )
        return pending == 0

    wait_until(settled, timeout)


def wallet(db: Any, user_id: uuid.UUID) -> Wallet:
    with db.transaction() as session:
        found = session.scalars(select(Wallet).where(Wallet.user_id == user_id)).one()
        session.expunge(found)
        return found


def balance(db: Any, user_id: uuid.UUID) -> Decimal:
    return wallet(db, user_id).balance


def entries_of(db: Any, tx_id: Any) -> list[tuple[uuid.UUID, Decimal]]:
    with db.transaction() as session:
        rows = session.execute(
            select(LedgerEntry.wallet_id, LedgerEntry.amount).where(
                LedgerEntry.transaction_id == uuid.UUID(str(tx_id))
            )
        ).all()
    return [(r[0], r[1]) for r in rows]


def shard_idle(db: Any, shard: int) -> bool:
    """No settlement job holds `shard` (one may linger after settling a test's funding)."""
    from app.services import settlement

    with db.engine.connect() as conn:
        taken = settlement._try_lock(conn, shard)
        if taken:
            settlement._unlock(conn, shard)
        return taken


def provision(app: Any, user_id: uuid.UUID) -> uuid.UUID:
    return app.extensions["wallet"].provisioner.wallet_id_for(user_id, "user")


def fund(app: Any, user_id: uuid.UUID, amount: Decimal | str) -> None:
    """Give a user tokens the way production does: issuance into the platform wallet, then a
    reward, both settled by the real worker."""
    reward(app, [transfers.RewardItem(user_id, Decimal(amount), "test funding")])


def reward(app: Any, items: list[transfers.RewardItem]) -> None:
    """Issue what `items` pay into the platform wallet, then pay them as one service's rewards
    (one transaction each), all settled by the real worker."""
    wiring, system = app.extensions["wallet"], app.extensions["wallet"].system
    for item in items:
        provision(app, item.user_id)
    total = sum((item.amount for item in items), Decimal(0))
    wait_settled(wiring.db, [transfers.mint(wiring, system, total, "test funding")])
    service = uuid.uuid4()
    wiring.provisioner.wallet_id_for(service, "service")
    reply = transfers.reward(
        wiring, system, service, movement.Idempotency(str(uuid.uuid4()), "fund"), items
    )
    wait_settled(wiring.db, reply.body["transaction_ids"])


def record_unchecked(
    app: Any, debit_user: uuid.UUID, credit_user: uuid.UUID, amounts: list[Decimal]
) -> list[uuid.UUID]:
    """Record PENDING transfers *without* the submit-time balance pre-check (reserving them like
    the API does), so tests can exercise the settlement's own balance rule and ordering."""
    wiring = app.extensions["wallet"]
    debit, credit = provision(app, debit_user), provision(app, credit_user)
    shards = wiring.config.settlement_shards
    ids = [uuid.uuid4() for _ in amounts]
    with wiring.db.transaction() as session:
        counters = reservations.change(
            session.connection(),
            [reservations.Change(debit, reserved=sum(amounts, Decimal(0)), sequenced=len(amounts))],
        )
        first = counters[debit].next_seq - len(amounts) + 1
        for i, (tx_id, amount) in enumerate(zip(ids, amounts, strict=True)):
            session.execute(
                text(
                    "INSERT INTO transactions (id, kind, debit_wallet_id, credit_wallet_id,"
                    " amount, seq, shard, created_at) VALUES (:id, 'transfer', :d, :c, :a, :seq,"
                    " :shard, clock_timestamp())"
                ),
                {
                    "id": tx_id,
                    "d": debit,
                    "c": credit,
                    "a": amount,
                    "seq": first + i,
                    "shard": shard_of(debit, shards),
                },
            )
    return ids


def connect_by_signing(client: Any, user: uuid.UUID) -> tuple[Keypair, str, str]:
    """Connect a new external keypair to `user`'s wallet the way a browser wallet does
    (challenge, sign, connect); returns the keypair, the signed message and the signature."""
    owner = Keypair()
    address = str(owner.pubkey())
    challenge = client.post(
        "/api/wallet/challenge", json={"wallet_address": address}, headers=auth(user)
    ).get_json()
    signature = base64.b64encode(bytes(owner.sign_message(challenge["message"].encode()))).decode()
    response = client.post(
        "/api/wallet/connect",
        json={"wallet_address": address, "signature": signature},
        headers=auth(user),
    )
    assert response.status_code == 200, response.get_json()
    return owner, challenge["message"], signature
