"""Withdrawals to a connected address, landing on the local cluster exactly once."""

import uuid
from decimal import Decimal

import pytest
from solders.keypair import Keypair
from spl.token.instructions import get_associated_token_address
from sqlalchemy import select, text

from app.chain.rpc import ChainUnavailableError
from app.models import Transaction
from app.services import withdrawals
from tests.chain_support import client as rpc_client
from tests.chain_support import move_tokens, token_account, token_balance
from tests.servers import servers
from tests.support import auth, balance, connect_by_signing, fund, wait_settled, wait_until

pytestmark = pytest.mark.usefixtures("worker")
FINALITY = 33


def _connected_user(app, db, amount="50", token_account_too=True):
    """A funded user whose wallet has an external address (connected long ago), which has a
    token account of the mint unless told otherwise."""
    user, external = uuid.uuid4(), Keypair()
    fund(app, user, amount)
    if token_account_too:
        token_account(servers().solana, external.pubkey())
    with db.transaction() as session:
        session.execute(
            text("UPDATE wallets SET address = :a WHERE user_id = :u"),
            {"a": str(external.pubkey()), "u": user},
        )
    return user, external


def _withdraw(client, user, amount):
    return client.post(
        "/api/wallet/withdrawals",
        json={"amount": amount},
        headers={**auth(user), "Idempotency-Key": str(uuid.uuid4())},
    )


def _tx(db, tx_id):
    with db.transaction() as session:
        found = session.get(Transaction, uuid.UUID(str(tx_id)))
        session.expunge(found)
        return found


def _refund_of(db, tx_id):
    with db.transaction() as session:
        return session.scalar(select(Transaction.id).where(Transaction.parent_id == tx_id))


def test_a_withdrawal_lands_once_and_completes_at_finalized(
    app, client, db, solana, wiring
) -> None:
    user, external = _connected_user(app, db)
    response = _withdraw(client, user, "20")
    assert response.status_code == 202
    tx_id = uuid.UUID(response.get_json()["transaction_id"])
    # the ledger debit happens in seq order; the worker then signs, stores and sends
    wait_until(lambda: _tx(db, tx_id).tx_hash is not None)
    wait_until(lambda: token_balance(solana, external.pubkey()) == Decimal(20))
    assert balance(db, user) == Decimal(30)
    assert _tx(db, tx_id).status == "pending"
    solana.advance(FINALITY)
    assert withdrawals.process(wiring, app.extensions["wallet"].system, tx_id) == "completed"
    tx = _tx(db, tx_id)
    assert tx.status == "completed" and tx.completed_at is not None
    status = rpc_client(solana).signature_status(tx.tx_hash)
    assert status is not None and status.finalized and status.err is None
    assert token_balance(solana, external.pubkey()) == Decimal(20)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_redelivery_between_send_and_confirm_sends_the_same_signature(
    app, client, db, solana, wiring
) -> None:
    """The first send is lost (worker killed right after storing and sending); every redelivery
    rebroadcasts the stored bytes: exactly one on-chain transfer."""
    system = app.extensions["wallet"].system
    user, external = _connected_user(app, db)
    solana.set_fault("drop_sends")
    try:
        tx_id = uuid.UUID(_withdraw(client, user, "5").get_json()["transaction_id"])
        wait_until(lambda: _tx(db, tx_id).signed_tx is not None)
        first_signature = _tx(db, tx_id).tx_hash
        assert token_balance(solana, external.pubkey()) == Decimal(0)
    finally:
        solana.set_fault(None)
    for _ in range(3):  # redeliveries
        assert withdrawals.process(wiring, system, tx_id) in ("sent", "confirming")
    assert _tx(db, tx_id).tx_hash == first_signature
    assert token_balance(solana, external.pubkey()) == Decimal(5)
    solana.advance(FINALITY)
    assert withdrawals.process(wiring, system, tx_id) == "completed"
    ata = get_associated_token_address(external.pubkey(), solana.mint)
    history = rpc_client(solana).signatures_for_address(str(ata))
    # newest first: the one transfer, then the creation of the account (before the withdrawal)
    assert [h["signature"] for h in history][:-1] == [first_signature] and len(history) == 2
    assert token_balance(solana, external.pubkey()) == Decimal(5)


def test_a_withdrawal_beyond_the_treasury_fails_and_the_balance_is_restored(
    app, client, db, solana, wiring
) -> None:
    user, external = _connected_user(app, db, "10")
    treasury, sink = solana.treasury_keypair, Keypair()
    held = token_balance(solana, treasury.pubkey())
    move_tokens(solana, treasury, sink.pubkey(), held - Decimal(1))  # the treasury runs dry
    try:
        tx_id = uuid.UUID(_withdraw(client, user, "2").get_json()["transaction_id"])
        wait_until(lambda: _tx(db, tx_id).status == "failed")
    finally:
        solana.fund(sink.pubkey(), sol="1")
        move_tokens(solana, sink, treasury.pubkey(), held - Decimal(1))
    tx = _tx(db, tx_id)
    assert tx.failure_reason == "chain_rejected"
    refund = _refund_of(db, tx_id)
    wait_settled(db, [refund])
    assert balance(db, user) == Decimal(10)
    assert token_balance(solana, external.pubkey()) == Decimal(0)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_rpc_down_during_confirmation_then_back_completes(app, client, db, solana, wiring) -> None:
    system = app.extensions["wallet"].system
    user, external = _connected_user(app, db)
    tx_id = uuid.UUID(_withdraw(client, user, "3").get_json()["transaction_id"])
    wait_until(lambda: token_balance(solana, external.pubkey()) == Decimal(3))
    solana.advance(FINALITY)
    solana.set_fault("down")
    try:
        with pytest.raises(ChainUnavailableError):
            withdrawals.process(wiring, system, tx_id)
        wiring.queue.send("chain.process_withdrawal", str(tx_id))  # the task survives it too
        assert _tx(db, tx_id).status == "pending"
    finally:
        solana.set_fault(None)
    # whichever runs first after the RPC is back — this call or the queued task — completes it
    assert withdrawals.process(wiring, system, tx_id) in ("completed", "noop")
    assert _tx(db, tx_id).status == "completed"
    assert balance(db, user) == Decimal(47)


def test_a_withdrawal_that_expires_without_landing_fails_and_is_refunded(
    app, client, db, solana, wiring
) -> None:
    system = app.extensions["wallet"].system
    user, external = _connected_user(app, db)
    solana.set_fault("drop_sends")
    try:
        tx_id = uuid.UUID(_withdraw(client, user, "4").get_json()["transaction_id"])
        wait_until(lambda: _tx(db, tx_id).chain_sends == 1)  # sent (and dropped) by the worker
        # past lastValidBlockHeight in the finalized view: the dropped signature can never land
        solana.advance(160 + FINALITY)
    finally:
        solana.set_fault(None)
    assert withdrawals.process(wiring, system, tx_id) == "failed"
    tx = _tx(db, tx_id)
    assert (tx.status, tx.failure_reason) == ("failed", "expired")
    assert rpc_client(solana).signature_status(tx.tx_hash) is None
    wait_settled(db, [_refund_of(db, tx_id)])
    assert balance(db, user) == Decimal(50)
    assert token_balance(solana, external.pubkey()) == Decimal(0)


def test_withdrawals_need_a_connected_address_and_the_balance(app, client, db) -> None:
    user = uuid.uuid4()
    fund(app, user, "5")
    response = _withdraw(client, user, "1")
    assert response.status_code == 422 and response.get_json()["code"] == "wallet_not_connected"
    connected, _ = _connected_user(app, db, "5")
    too_much = _withdraw(client, connected, "5.000001")
    assert too_much.status_code == 422 and too_much.get_json()["code"] == "insufficient_balance"
    no_key = client.post("/api/wallet/withdrawals", json={"amount": "1"}, headers=auth(connected))
    assert no_key.status_code == 400


def _drain_treasury(solana):
    """Move all but one token out of the treasury; returns a function that puts them back."""
    treasury, sink = solana.treasury_keypair, Keypair()
    held = token_balance(solana, treasury.pubkey())
    move_tokens(solana, treasury, sink.pubkey(), held - Decimal(1))

    def restore() -> None:
        solana.fund(sink.pubkey(), sol="1")
        move_tokens(solana, sink, treasury.pubkey(), held - Decimal(1))

    return restore


def _sent_but_dropped(client, db, solana, user, amount):
    """A withdrawal whose first send the cluster answered but never executed (still in flight)."""
    solana.set_fault("drop_sends")
    try:
        tx_id = uuid.UUID(_withdraw(client, user, amount).get_json()["transaction_id"])
        wait_until(lambda: _tx(db, tx_id).chain_sends == 1)
    finally:
        solana.set_fault(None)
    return tx_id


def test_a_rebroadcast_refused_at_preflight_waits_and_the_late_first_copy_completes_it(
    app, client, db, solana, wiring
) -> None:
    """Issue 10 item 10: refunding on the rebroadcast's refusal while the first copy could still
    land would pay out twice."""
    system = app.extensions["wallet"].system
    user, external = _connected_user(app, db)
    tx_id = _sent_but_dropped(client, db, solana, user, "5")
    restore = _drain_treasury(solana)
    try:  # the rebroadcast fails preflight (the treasury cannot pay it right now)
        assert withdrawals.process(wiring, system, tx_id) == "waiting"
    finally:
        restore()
    tx = _tx(db, tx_id)
    assert (tx.status, tx.stage, tx.chain_sends) == ("pending", "on_chain", 2)
    assert _refund_of(db, tx_id) is None
    rpc_client(solana).send(tx.signed_tx)  # the first copy reaches the leader after all
    solana.advance(FINALITY)
    assert withdrawals.process(wiring, system, tx_id) == "completed"
    assert _refund_of(db, tx_id) is None
    assert balance(db, user) == Decimal(45)
    assert token_balance(solana, external.pubkey()) == Decimal(5)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def test_a_refused_rebroadcast_is_refunded_only_after_expiry_in_the_finalized_view(
    app, client, db, solana, wiring
) -> None:
    system = app.extensions["wallet"].system
    user, external = _connected_user(app, db)
    tx_id = _sent_but_dropped(client, db, solana, user, "6")
    restore = _drain_treasury(solana)
    try:
        assert withdrawals.process(wiring, system, tx_id) == "waiting"
    finally:
        restore()
    solana.advance(160)  # past its last valid height as confirmed, not yet as finalized
    assert withdrawals.process(wiring, system, tx_id) == "waiting"
    assert _tx(db, tx_id).status == "pending" and _refund_of(db, tx_id) is None
    solana.advance(FINALITY)
    assert withdrawals.process(wiring, system, tx_id) == "failed"
    tx = _tx(db, tx_id)
    assert (tx.status, tx.failure_reason) == ("failed", "expired")
    wait_settled(db, [_refund_of(db, tx_id)])
    assert balance(db, user) == Decimal(50)
    assert token_balance(solana, external.pubkey()) == Decimal(0)
    assert app.test_cli_runner().invoke(args=["ledger", "check"]).exit_code == 0


def _lamports(solana, owner):
    return rpc_client(solana).rpc.call("getBalance", str(owner))["value"]


def test_a_withdrawal_below_the_minimum_is_refused(app, client, db) -> None:
    user, _ = _connected_user(app, db, "5")
    response = _withdraw(client, user, "0.999999")
    assert response.status_code == 422
    assert response.get_json()["code"] == "amount_below_minimum"
    assert response.get_json()["minimum"] == "1.000000"
    assert _withdraw(client, user, "1").status_code == 202


def test_a_withdrawal_to_an_address_without_a_token_account_is_refused(app, client, db) -> None:
    user, _ = _connected_user(app, db, "5", token_account_too=False)
    response = _withdraw(client, user, "2")
    assert response.status_code == 422
    assert response.get_json()["code"] == "destination_account_missing"
    assert balance(db, user) == Decimal(5)
    assert client.get("/api/wallet", headers=auth(user)).get_json()["wallet"][
        "available_balance"
    ] == ("5.000000")


def test_the_treasury_never_pays_for_a_destination_token_account(
    app, client, db, solana, monkeypatch
) -> None:
    """Should the account be missing by the time the transfer is sent, the transfer fails (it
    does not create the account on the treasury's rent) and the withdrawal is refunded."""
    monkeypatch.setattr(withdrawals, "check_destination", lambda *args: None, raising=False)
    user, external = _connected_user(app, db, "5", token_account_too=False)
    treasury = solana.treasury_keypair.pubkey()
    lamports = _lamports(solana, treasury)
    tx_id = uuid.UUID(_withdraw(client, user, "2").get_json()["transaction_id"])
    wait_until(lambda: _tx(db, tx_id).status == "failed")
    assert _tx(db, tx_id).failure_reason == "chain_rejected"
    wait_settled(db, [_refund_of(db, tx_id)])
    assert balance(db, user) == Decimal(5)
    assert _lamports(solana, treasury) == lamports
    assert rpc_client(solana).token_balance(str(external.pubkey()), str(solana.mint)) is None


def test_a_newly_connected_address_waits_out_the_cooldown_before_its_first_withdrawal(
    app, client, db, solana
) -> None:
    user = uuid.uuid4()
    fund(app, user, "10")
    owner, _, _ = connect_by_signing(client, user)
    token_account(solana, owner.pubkey())
    refused = _withdraw(client, user, "2")
    assert refused.status_code == 422
    problem = refused.get_json()
    assert problem["code"] == "address_cooldown"
    assert 86000 < problem["retry_after"] <= 86400 and "opens_at" in problem
    assert refused.headers["Retry-After"] == str(problem["retry_after"])
    with db.transaction() as session:  # a day later
        session.execute(
            text(
                "UPDATE wallets SET address_connected_at = address_connected_at - interval '1 day'"
                " WHERE user_id = :u"
            ),
            {"u": user},
        )
    assert _withdraw(client, user, "2").status_code == 202


def test_a_withdrawal_that_slipped_past_the_cooldown_is_refused_before_signing(
    app, client, db, solana, monkeypatch
) -> None:
    """As if the address had been connected between the request's check and its recording."""
    monkeypatch.setattr(withdrawals, "check_destination", lambda *args: None)
    user = uuid.uuid4()
    fund(app, user, "10")
    owner, _, _ = connect_by_signing(client, user)
    token_account(solana, owner.pubkey())
    tx_id = uuid.UUID(_withdraw(client, user, "2").get_json()["transaction_id"])
    wait_until(lambda: _tx(db, tx_id).status == "failed")
    tx = _tx(db, tx_id)
    assert (tx.failure_reason, tx.signed_tx) == ("address_cooldown", None)
    wait_settled(db, [_refund_of(db, tx_id)])
    assert balance(db, user) == Decimal(10)
    assert token_balance(solana, owner.pubkey()) == Decimal(0)
