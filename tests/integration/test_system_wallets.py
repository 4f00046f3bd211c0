"""System wallets (platform, issuance, chain) are never a counterparty chosen by a user or a
service, and no token can act as a system account (issue 10 items 1, 2 and 6): money enters only
by issuance or deposit."""

import uuid
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, text

from app.domain.accounts import CHAIN_USER_ID, ISSUANCE_USER_ID, PLATFORM_USER_ID
from app.domain.errors import ReservedSubjectError, WalletNotFoundError
from app.domain.transactions import Kind
from app.models import AuditLog, Transaction, User, Wallet, WalletCounters
from app.services.recording import Line, Submission, record, shard_of
from tests.support import auth, balance, fund, provision, wait_settled

pytestmark = pytest.mark.usefixtures("worker")

SYSTEM = {"platform": PLATFORM_USER_ID, "issuance": ISSUANCE_USER_ID, "chain": CHAIN_USER_ID}


@pytest.fixture
def system_ids(system_wallets: Any) -> dict[str, uuid.UUID]:
    """Every system account with its wallet in place (a fresh database creates them lazily)."""
    for name in SYSTEM:
        system_wallets.wallet_id(name)
    return SYSTEM


def _service_post(client: Any, path: str, body: dict[str, Any]) -> Any:
    headers = {**auth(uuid.uuid4(), "service"), "Idempotency-Key": str(uuid.uuid4())}
    return client.post(f"/api/internal/{path}", json=body, headers=headers)


def _counters(db: Any, user_id: uuid.UUID) -> tuple[int, Decimal]:
    """(next seq, reserved total) of a user's wallet: unchanged when nothing was accepted."""
    with db.transaction() as session:
        row = session.execute(
            select(WalletCounters.next_seq, WalletCounters.reserved_total)
            .join(Wallet, Wallet.id == WalletCounters.wallet_id)
            .where(Wallet.user_id == user_id)
        ).one()
    return row.next_seq, row.reserved_total


def _not_found(response: Any) -> None:
    assert response.status_code == 404, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "recipient_not_found"


@pytest.mark.parametrize("name", list(SYSTEM))
def test_a_service_cannot_charge_a_system_account(client, db, system_ids, name) -> None:
    """Charging the issuance account used to complete: it paid the platform money it never had."""
    before = _counters(db, system_ids[name])
    response = _service_post(
        client, "charges", {"user_id": str(system_ids[name]), "amount": "1000", "reason": "fee"}
    )
    _not_found(response)
    assert _counters(db, system_ids[name]) == before


@pytest.mark.parametrize("name", list(SYSTEM))
def test_a_service_cannot_reward_a_system_account_alone_or_among_users(
    app, client, db, system_ids, name
) -> None:
    user = uuid.uuid4()
    fund(app, user, "1")  # the platform wallet has money to pay rewards with
    before = _counters(db, PLATFORM_USER_ID)
    single = {"user_id": str(system_ids[name]), "amount": "1", "reason": "x"}
    _not_found(_service_post(client, "rewards", single))
    bulk = [{"user_id": str(user), "amount": "1", "reason": "x"}, single]
    _not_found(_service_post(client, "rewards", {"items": bulk}))
    assert _counters(db, PLATFORM_USER_ID) == before  # all or nothing
    assert balance(db, user) == Decimal(1)


@pytest.mark.parametrize("name", list(SYSTEM))
def test_a_user_cannot_transfer_to_a_system_account(app, client, db, system_ids, name) -> None:
    user = uuid.uuid4()
    fund(app, user, "5")
    response = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(system_ids[name]), "amount": "5"},
        headers={**auth(user), "Idempotency-Key": str(uuid.uuid4())},
    )
    _not_found(response)
    assert balance(db, user) == Decimal(5)
    assert client.get("/api/wallet", headers=auth(user)).get_json()["wallet"][
        "available_balance"
    ] == ("5.000000")


def test_a_transfer_that_reached_a_system_wallet_is_not_refundable_out_of_it(
    app, client, db, wiring, system_ids
) -> None:
    """A row from before the fix: refunding it would have paid the user out of the issuance
    account, which may go negative."""
    user = uuid.uuid4()
    fund(app, user, "3")
    debit = provision(app, user)
    credit = app.extensions["wallet"].system.wallet_id("issuance")
    tx_id = uuid.uuid4()
    with db.transaction() as session:  # recorded as the API once accepted it
        seq = session.scalar(
            text(
                "UPDATE wallet_counters SET next_seq = next_seq + 1,"
                " reserved_total = reserved_total + 3 WHERE wallet_id = :w RETURNING next_seq"
            ),
            {"w": debit},
        )
        session.execute(
            text(
                "INSERT INTO transactions (id, kind, debit_wallet_id, credit_wallet_id, amount,"
                " seq, shard, created_at) VALUES (:id, 'transfer', :d, :c, 3, :seq, :shard,"
                " clock_timestamp())"
            ),
            {
                "id": tx_id,
                "d": debit,
                "c": credit,
                "seq": seq,
                "shard": shard_of(debit, wiring.config.settlement_shards),
            },
        )
    wiring.queue.kick_settlement(shard_of(debit, wiring.config.settlement_shards), force=True)
    wait_settled(db, [tx_id])
    assert balance(db, user) == Decimal(0)

    response = _service_post(client, "refunds", {"transaction_id": str(tx_id)})
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["code"] == "not_refundable"
    with db.transaction() as session:
        refunds = session.scalar(
            select(func.count()).select_from(Transaction).where(Transaction.parent_id == tx_id)
        )
    assert refunds == 0 and balance(db, user) == Decimal(0)


def test_fees_stay_refundable_to_the_user_who_paid_them(app, client, db) -> None:
    user = uuid.uuid4()
    fund(app, user, "4")
    fee = _service_post(client, "charges", {"user_id": str(user), "amount": "4", "reason": "f"})
    wait_settled(db, [fee.get_json()["transaction_id"]])
    refund = _service_post(client, "refunds", {"transaction_id": fee.get_json()["transaction_id"]})
    assert refund.status_code == 202, refund.get_json()
    wait_settled(db, [refund.get_json()["transaction_id"]])
    assert balance(db, user) == Decimal(4)


def test_the_database_pays_each_kind_only_from_its_kind_of_wallet(
    app, db, wiring, system_wallets
) -> None:
    """Defence in depth below the services: a transfer out of the platform wallet, or a reward
    out of a user's, is refused by `accept_transactions` itself."""
    user = uuid.uuid4()
    user_wallet = provision(app, user)
    wrong = [
        Submission(Kind.TRANSFER, [Line(user_wallet, Decimal(1))], None,
                   debit_wallet_id=system_wallets.platform()),
        Submission(Kind.SERVICE_FEE, [Line(system_wallets.platform(), Decimal(1))], None,
                   debit_wallet_id=system_wallets.wallet_id("issuance")),
        Submission(Kind.REWARD, [Line(user_wallet, Decimal(1))], None,
                   debit_wallet_id=system_wallets.wallet_id("chain")),
        Submission(Kind.ISSUANCE, [Line(system_wallets.platform(), Decimal(1))], None,
                   debit_wallet_id=user_wallet),
    ]  # fmt: skip
    for submission in wrong:
        with pytest.raises(WalletNotFoundError), wiring.db.transaction() as session:
            record(session, submission, wiring.config.settlement_shards)


def test_the_admin_transaction_list_finds_no_user_behind_a_system_id(
    app, client, system_ids
) -> None:
    fund(app, uuid.uuid4(), "1")  # the platform wallet has history
    admin = auth(uuid.uuid4(), "admin")
    for user_id in system_ids.values():
        listed = client.get(f"/api/admin/transactions?user_id={user_id}", headers=admin)
        assert listed.status_code == 200
        assert listed.get_json() == {"items": [], "next_cursor": None}


def _reserved_audits(db: Any, subject: uuid.UUID) -> list[AuditLog]:
    with db.transaction() as session:
        rows = list(
            session.scalars(
                select(AuditLog)
                .where(AuditLog.action == "auth.reserved_subject", AuditLog.target == str(subject))
                .order_by(AuditLog.id)
            )
        )
        session.expunge_all()
        return rows


# One route per role that any token of that role may reach.
ROLE_ROUTES = {
    "user": ("GET", "/api/wallet"),
    "service": ("POST", "/api/internal/charges"),
    "admin": ("GET", "/api/admin/transactions"),
}


@pytest.mark.parametrize("role", list(ROLE_ROUTES))
@pytest.mark.parametrize("name", list(SYSTEM))
def test_a_token_naming_a_system_account_is_refused_and_audited(
    client, db, system_ids, name, role
) -> None:
    """A user token for the issuance account was served its wallet (balance −1000000.000001)."""
    subject = system_ids[name]
    before = len(_reserved_audits(db, subject))
    method, path = ROLE_ROUTES[role]
    response = client.open(
        path, method=method, json={}, headers={**auth(subject, role), "Idempotency-Key": "k"}
    )
    assert response.status_code == 403, response.get_json()
    assert response.mimetype == "application/problem+json"
    assert response.get_json()["code"] == "reserved_subject"
    assert "balance" not in response.get_data(as_text=True)
    audits = _reserved_audits(db, subject)
    assert len(audits) == before + 1
    assert audits[-1].actor_id is None and audits[-1].details["role"] == role


def test_a_reserved_id_without_an_account_is_refused_before_anything_is_provisioned(
    app, client, db
) -> None:
    """Ids below …0001:0000 are kept for system accounts to come: a token naming one must not
    create a user (and a user wallet) that a later system account would then be handed."""
    future = uuid.UUID("00000000-0000-0000-0000-00000000fffe")
    for _ in range(2):  # nothing is remembered either
        response = client.get("/api/wallet", headers=auth(future))
        assert response.status_code == 403 and response.get_json()["code"] == "reserved_subject"
    with db.transaction() as session:
        assert session.get(User, future) is None
        assert session.scalar(select(Wallet.id).where(Wallet.user_id == future)) is None
    assert len(_reserved_audits(db, future)) >= 2
    with pytest.raises(ReservedSubjectError):
        app.extensions["wallet"].provisioner.wallet_id_for(future, "user")


def test_the_cli_prints_no_token_for_a_reserved_id(app) -> None:
    result = app.test_cli_runner().invoke(args=["users", "token", str(ISSUANCE_USER_ID)])
    assert result.exit_code != 0 and "reserved for system accounts" in result.output
