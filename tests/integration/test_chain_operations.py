"""External balance on GET /api/wallet, the beat chain poll, and `flask dev fund`."""

import uuid
from decimal import Decimal

import pytest
from solders.keypair import Keypair
from sqlalchemy import text

from tests.chain_support import funded_wallet, pay, token_balance
from tests.support import auth, balance, provision, status_of, wait_until

pytestmark = pytest.mark.usefixtures("worker")


def _connect_directly(app, db, user, address):
    provision(app, user)
    with db.transaction() as session:
        session.execute(
            text("UPDATE wallets SET address = :a WHERE user_id = :u"), {"a": address, "u": user}
        )


def test_the_wallet_shows_the_connected_address_on_chain_balance(app, client, db, solana) -> None:
    user, external = uuid.uuid4(), funded_wallet(solana, "42.5")
    _connect_directly(app, db, user, str(external.pubkey()))
    wallet = client.get("/api/wallet", headers=auth(user)).get_json()["wallet"]
    assert wallet["is_connected"] is True and wallet["address"] == str(external.pubkey())
    assert wallet["external_balance"] == "42.500000"
    assert wallet["external_balance_available"] is True


def test_an_address_without_a_token_account_holds_zero(app, client, db) -> None:
    user = uuid.uuid4()
    _connect_directly(app, db, user, str(Keypair().pubkey()))
    wallet = client.get("/api/wallet", headers=auth(user)).get_json()["wallet"]
    assert (wallet["external_balance"], wallet["external_balance_available"]) == ("0.000000", True)


def test_the_wallet_still_answers_when_the_rpc_is_down(app, client, db, solana) -> None:
    user = uuid.uuid4()
    _connect_directly(app, db, user, str(Keypair().pubkey()))  # not cached yet
    solana.set_fault("down")
    try:
        response = client.get("/api/wallet", headers=auth(user))
    finally:
        solana.set_fault(None)
    assert response.status_code == 200
    wallet = response.get_json()["wallet"]
    assert wallet["external_balance"] is None and wallet["external_balance_available"] is False
    assert wallet["balance"] == "0.000000"


def test_the_beat_poll_credits_a_paid_deposit(app, client, db, solana, wiring) -> None:
    user = uuid.uuid4()
    body = client.post("/api/wallet/deposits", json={"amount": "3"}, headers=auth(user)).get_json()
    pay(
        solana,
        funded_wallet(solana),
        recipient=solana.treasury_keypair.pubkey(),
        amount=Decimal(3),
        reference=body["reference"],
        memo=body["transaction_id"],
    )
    solana.advance(33)

    def credited() -> bool:
        wiring.queue.send("chain.poll")  # what beat sends every CHAIN_POLL_SECONDS
        return status_of(db, body["transaction_id"]) == "completed"

    wait_until(credited, timeout=30, interval=0.5)
    assert balance(db, user) == Decimal(3)


def test_dev_fund_gives_an_address_sol_and_tokens_on_the_local_cluster(app, solana) -> None:
    owner = Keypair().pubkey()
    result = app.test_cli_runner().invoke(args=["dev", "fund", str(owner), "12.25"])
    assert result.exit_code == 0, result.output
    assert token_balance(solana, owner) == Decimal("12.25")
    bad = app.test_cli_runner().invoke(args=["dev", "fund", "not-base58!", "1"])
    assert bad.exit_code != 0


def test_dev_fund_refuses_anything_but_a_local_cluster(config) -> None:
    from app import create_app

    remote = create_app(config.replace(solana_rpc_url="https://api.devnet.solana.com"))
    result = remote.test_cli_runner().invoke(args=["dev", "fund", str(Keypair().pubkey()), "1"])
    assert result.exit_code != 0 and "refusing" in result.output
