"""Deposits paid with real signed Solana Pay transfers on the local cluster."""

import dataclasses
import uuid
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from app.models import Transaction
from app.queue import CHECK_DEPOSIT
from app.services import deposits
from tests.chain_support import funded_wallet, other_mint, pay
from tests.support import auth, balance, wait_settled

pytestmark = pytest.mark.usefixtures("worker")
FINALITY = 33  # blocks until `finalized` on the test cluster (finalize_after=32)


def _request(client, user, amount="25"):
    response = client.post("/api/wallet/deposits", json={"amount": amount}, headers=auth(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _tx(db, tx_id):
    with db.transaction() as session:
        found = session.get(Transaction, uuid.UUID(str(tx_id)))
        session.expunge(found)
        return found


def test_a_deposit_request_is_a_pending_solana_pay_transfer_request(client, solana) -> None:
    user = uuid.uuid4()
    body = _request(client, user, "25.5")
    assert body["status"] == "pending"
    assert body["recipient"] == str(solana.treasury_keypair.pubkey())
    assert body["mint"] == str(solana.mint)
    url = urlparse(body["payment_url"])
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.scheme == "solana" and url.path == body["recipient"]
    assert query["amount"] == "25.5" and query["spl-token"] == body["mint"]
    assert query["reference"] == body["reference"] and query["memo"] == body["transaction_id"]
    detail = client.get(f"/api/wallet/transactions/{body['transaction_id']}", headers=auth(user))
    assert detail.get_json()["status"] == "pending" and detail.get_json()["type"] == "deposit"


def test_a_paid_deposit_is_credited_once_at_finalized(app, client, db, solana, wiring) -> None:
    user = uuid.uuid4()
    body = _request(client, user, "25")
    payer = funded_wallet(solana, "100")
    signature = pay(
        solana,
        payer,
        recipient=solana.treasury_keypair.pubkey(),
        amount=Decimal(25),
        reference=body["reference"],
        memo=body["transaction_id"],
    )
    system = app.extensions["wallet"].system
    tx_id = uuid.UUID(body["transaction_id"])
    assert deposits.check(wiring, system, tx_id) == "waiting"  # confirmed, not finalized yet
    solana.advance(FINALITY)
    # the on-demand check when the user looks at it
    client.get(f"/api/wallet/transactions/{tx_id}", headers=auth(user))
    wait_settled(db, [tx_id])
    tx = _tx(db, tx_id)
    assert (tx.status, tx.tx_hash) == ("completed", signature)
    assert balance(db, user) == Decimal(25)
    # watched again (beat, redelivery): never credited twice
    assert deposits.check(wiring, system, tx_id) == "noop"
    wiring.queue.send(CHECK_DEPOSIT, str(tx_id))
    wiring.queue.send("chain.poll")
    assert balance(db, user) == Decimal(25)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_an_overpayment_is_credited_in_full(app, client, db, solana, wiring) -> None:
    user = uuid.uuid4()
    body = _request(client, user, "10")
    pay(
        solana,
        funded_wallet(solana),
        recipient=solana.treasury_keypair.pubkey(),
        amount=Decimal("12.5"),
        reference=body["reference"],
        memo=body["transaction_id"],
    )
    solana.advance(FINALITY)
    deposits.check(wiring, app.extensions["wallet"].system, uuid.UUID(body["transaction_id"]))
    wait_settled(db, [body["transaction_id"]])
    assert balance(db, user) == Decimal("12.5")
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_underpaid_and_wrong_mint_payments_are_not_credited(
    app, client, db, solana, wiring
) -> None:
    system = app.extensions["wallet"].system
    treasury = solana.treasury_keypair.pubkey()
    under_user, wrong_user = uuid.uuid4(), uuid.uuid4()
    under = _request(client, under_user, "25")
    wrong = _request(client, wrong_user, "25")
    payer = funded_wallet(solana, "100")
    pay(
        solana,
        payer,
        recipient=treasury,
        amount=Decimal("24.999999"),
        reference=under["reference"],
        memo=under["transaction_id"],
    )
    foreign = other_mint(solana, payer, Decimal(100))
    pay(
        solana,
        payer,
        recipient=treasury,
        amount=Decimal(25),
        reference=wrong["reference"],
        memo=wrong["transaction_id"],
        mint=foreign,
    )
    solana.advance(FINALITY)
    for body in (under, wrong):
        assert deposits.check(wiring, system, uuid.UUID(body["transaction_id"])) == "waiting"
    under_tx, wrong_tx = _tx(db, under["transaction_id"]), _tx(db, wrong["transaction_id"])
    assert under_tx.status == wrong_tx.status == "pending"
    assert under_tx.details["rejected_payments"][0]["reason"] == "underpaid"
    assert under_tx.details["rejected_payments"][0]["amount"] == "24.999999"
    assert wrong_tx.details["rejected_payments"][0]["reason"] == "wrong_mint"
    assert balance(db, under_user) == balance(db, wrong_user) == Decimal(0)


def test_an_unpaid_deposit_expires_and_a_late_payment_is_still_credited(
    app, client, db, solana, wiring
) -> None:
    system = app.extensions["wallet"].system
    user = uuid.uuid4()
    body = _request(client, user, "7")
    tx_id = uuid.UUID(body["transaction_id"])
    with db.transaction() as session:
        session.execute(
            text("UPDATE transactions SET expires_at = now() - interval '1 s' WHERE id = :id"),
            {"id": tx_id},
        )
    assert deposits.check(wiring, system, tx_id) == "expired"
    tx = _tx(db, tx_id)
    assert (tx.status, tx.failure_reason) == ("failed", "expired")
    # the payment lands after expiry: not lost
    signature = pay(
        solana,
        funded_wallet(solana),
        recipient=solana.treasury_keypair.pubkey(),
        amount=Decimal(7),
        reference=body["reference"],
        memo=body["transaction_id"],
    )
    solana.advance(FINALITY)
    assert deposits.check(wiring, system, tx_id) == "late_credited"
    assert deposits.check(wiring, system, tx_id) == "noop"
    with db.transaction() as session:
        late = session.execute(
            text("SELECT id, status FROM transactions WHERE parent_id = :id"), {"id": tx_id}
        ).one()
    wait_settled(db, [late.id])
    assert _tx(db, late.id).tx_hash == signature
    assert balance(db, user) == Decimal(7)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_deposit_amount_is_validated(client) -> None:
    user = uuid.uuid4()
    for amount in ("0", "-5", "1.0000001", "abc"):
        response = client.post("/api/wallet/deposits", json={"amount": amount}, headers=auth(user))
        assert response.status_code == 422


def test_a_user_may_keep_only_a_few_deposits_awaiting_payment(client, db, config) -> None:
    user = uuid.uuid4()
    cap = config.deposit_max_open_per_user
    opened = [_request(client, user, "1")["transaction_id"] for _ in range(cap)]
    refused = client.post("/api/wallet/deposits", json={"amount": "1"}, headers=auth(user))
    assert refused.status_code == 409
    assert (refused.get_json()["code"], refused.get_json()["limit"]) == (
        "too_many_open_deposits",
        cap,
    )
    assert _request(client, uuid.uuid4(), "1")["status"] == "pending"  # others are not affected
    with db.transaction() as session:  # one of them expires: its place frees up
        session.execute(
            text("UPDATE transactions SET expires_at = now() - interval '1 s' WHERE id = :id"),
            {"id": uuid.UUID(opened[0])},
        )
    assert _request(client, user, "1")["status"] == "pending"


def test_the_watcher_goes_round_every_open_deposit_not_only_the_oldest(client, db, wiring) -> None:
    mine = {uuid.UUID(_request(client, uuid.uuid4(), "1")["transaction_id"]) for _ in range(3)}
    with db.transaction() as session:
        open_now = session.scalar(
            text("SELECT count(*) FROM transactions WHERE stage = 'awaiting_payment'")
        )
    batch = 2
    seen: set[uuid.UUID] = set()
    for _ in range(open_now // batch + 2):  # one full round of polls, and a spare
        polled = deposits.open_deposits(wiring, limit=batch)
        assert len(polled) <= batch
        seen |= set(polled)
    assert mine <= seen


def test_viewing_an_unpaid_deposit_asks_the_chain_at_most_once_per_interval(
    app, client, db, wiring, monkeypatch
) -> None:
    user = uuid.uuid4()
    tx_id = uuid.UUID(_request(client, user, "2")["transaction_id"])
    limited = dataclasses.replace(
        wiring, config=wiring.config.replace(deposit_view_check_seconds=60)
    )
    checks: list[uuid.UUID] = []
    real_check = deposits.check

    def counting_check(*args, **kwargs):
        checks.append(args[2])
        return real_check(*args, **kwargs)

    monkeypatch.setattr(deposits, "check", counting_check)
    system = app.extensions["wallet"].system
    wallet_id = _tx(db, tx_id).credit_wallet_id
    for _ in range(5):
        seen = deposits.view_own(limited, system, wallet_id, tx_id)
        assert (seen.status, seen.stage) == ("pending", "awaiting_payment")
    assert checks == [tx_id]
    with db.transaction() as session:  # a minute later
        session.execute(
            text("UPDATE transactions SET checked_at = now() - interval '61 s' WHERE id = :id"),
            {"id": tx_id},
        )
    deposits.view_own(limited, system, wallet_id, tx_id)
    assert checks == [tx_id, tx_id]
