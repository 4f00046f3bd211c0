"""Deposits paid with real signed Solana Pay transfers on the local cluster."""

import uuid
from decimal import Decimal
from urllib.parse import parse_qs, urlparse

import pytest
from sqlalchemy import text

from app.models import Transaction
from app.services import deposits
from tests.chain_support import funded_wallet, other_mint, pay
from tests.conftest import auth
from tests.support import balance, wait_settled

pytestmark = pytest.mark.usefixtures("worker")
FINALITY = 33  # blocks until `finalized` on the test cluster (finalize_after=32)


def _request(client, user, amount="25"):  # type: ignore[no-untyped-def]
    response = client.post("/api/wallet/deposits", json={"amount": amount}, headers=auth(user))
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _tx(db, tx_id):  # type: ignore[no-untyped-def]
    with db.transaction() as session:
        found = session.get(Transaction, uuid.UUID(str(tx_id)))
        session.expunge(found)
        return found


def test_a_deposit_request_is_a_pending_solana_pay_transfer_request(client, solana) -> None:  # type: ignore[no-untyped-def]
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


def test_a_paid_deposit_is_credited_once_at_finalized(app, client, db, solana, wiring) -> None:  # type: ignore[no-untyped-def]
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
    system = app.extensions["system_wallets"]
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
    wiring.queue.send("chain.check_deposit", str(tx_id))
    wiring.queue.send("chain.poll")
    assert balance(db, user) == Decimal(25)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_an_overpayment_is_credited_in_full(app, client, db, solana, wiring) -> None:  # type: ignore[no-untyped-def]
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
    deposits.check(wiring, app.extensions["system_wallets"], uuid.UUID(body["transaction_id"]))
    wait_settled(db, [body["transaction_id"]])
    assert balance(db, user) == Decimal("12.5")
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_underpaid_and_wrong_mint_payments_are_not_credited(
    app, client, db, solana, wiring
) -> None:  # type: ignore[no-untyped-def]
    system = app.extensions["system_wallets"]
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


def test_an_unpaid_deposit_expires_and_a_late_payment_is_still_credited(  # type: ignore[no-untyped-def]
    app, client, db, solana, wiring
) -> None:
    system = app.extensions["system_wallets"]
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


def test_deposit_amount_is_validated(client) -> None:  # type: ignore[no-untyped-def]
    user = uuid.uuid4()
    for amount in ("0", "-5", "1.0000001", "abc"):
        response = client.post("/api/wallet/deposits", json={"amount": amount}, headers=auth(user))
        assert response.status_code == 422
