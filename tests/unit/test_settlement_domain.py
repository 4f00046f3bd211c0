import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.domain.fraud import FraudThresholds, Screening
from app.domain.settlement import (
    PendingTx,
    WalletState,
    fail_unsettled,
    reject_held,
    release_held,
    settle_batch,
)
from app.domain.transactions import FailureReason, FraudReason, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _wallet(balance: str, kind: str = "user", settled_seq: int = 0) -> WalletState:
    return WalletState(
        uuid.uuid4(), kind, Decimal(balance), Decimal(0), settled_seq, True, uuid.uuid4()
    )


def _tx(
    debit: WalletState,
    credit: WalletState,
    amount: str,
    seq: int,
    at: int = 0,
    kind: str = "transfer",
) -> PendingTx:
    debit.reserved += Decimal(amount)
    return PendingTx(
        uuid.uuid4(), debit.id, credit.id, Decimal(amount), seq, T0 + timedelta(seconds=at), kind
    )


def test_debits_settle_in_seq_order_and_the_later_ones_fail_when_money_runs_out() -> None:
    a, b = _wallet("2"), _wallet("0")
    txs = [_tx(a, b, "1", seq) for seq in (3, 1, 2)]
    result = settle_batch({a.id: a, b.id: b}, txs)
    by_id = {o.transaction_id: o for o in result.outcomes}
    assert [by_id[t.id].status for t in sorted(txs, key=lambda t: t.seq)] == [
        Status.COMPLETED,
        Status.COMPLETED,
        Status.FAILED,
    ]
    assert by_id[txs[0].id].reason is FailureReason.INSUFFICIENT_BALANCE
    assert (a.balance, a.reserved, a.settled_seq, b.balance) == (0, 0, 3, 2)
    assert sum(p.amount for p in result.postings) == 0 and len(result.postings) == 4


def test_a_gap_in_seq_holds_the_rest_back() -> None:
    a, b = _wallet("5"), _wallet("0")
    later = _tx(a, b, "1", 2)
    result = settle_batch({a.id: a, b.id: b}, [later])
    assert result.outcomes == [] and a.balance == 5


def test_a_credit_accepted_first_is_applied_before_a_later_debit() -> None:
    a, b, c = _wallet("1"), _wallet("0"), _wallet("0")
    first = _tx(a, b, "1", 1, at=0)
    second = _tx(b, c, "1", 1, at=1)
    result = settle_batch({w.id: w for w in (a, b, c)}, [second, first])
    assert {o.status for o in result.outcomes} == {Status.COMPLETED}
    assert (a.balance, b.balance, c.balance) == (0, 0, 1)


def test_external_accounts_go_negative_and_ignore_seq_gaps() -> None:
    issuance, platform = _wallet("0", kind="external", settled_seq=0), _wallet("0", "platform")
    tx = _tx(issuance, platform, "100", 7)
    result = settle_batch({issuance.id: issuance, platform.id: platform}, [tx])
    assert result.outcomes[0].status is Status.COMPLETED
    assert (issuance.balance, platform.balance) == (-100, 100)


def test_a_withdrawal_is_debited_but_stays_pending_on_chain() -> None:
    user, chain = _wallet("10"), _wallet("0", kind="external")
    tx = _tx(user, chain, "4", 1, kind="withdrawal")
    result = settle_batch({user.id: user, chain.id: chain}, [tx])
    assert (result.outcomes[0].status, result.outcomes[0].stage) == (Status.PENDING, "on_chain")
    assert result.sent_on_chain == [tx.id] and user.balance == 6


def test_an_inactive_recipient_fails_the_transfer_and_moves_nothing() -> None:
    a, b = _wallet("5"), _wallet("0")
    b.is_active = False
    result = settle_batch({a.id: a, b.id: b}, [_tx(a, b, "1", 1)])
    assert result.outcomes[0].reason is FailureReason.RECIPIENT_INACTIVE
    assert (a.balance, a.reserved, b.balance, result.postings) == (5, 0, 0, [])


def _screening(**overrides: object) -> Screening:
    return Screening(FraudThresholds(**overrides))


def test_a_flagged_transfer_is_held_reserved_and_later_debits_settle_against_what_remains() -> None:
    a, b, c = _wallet("15000"), _wallet("0"), _wallet("0")
    large = _tx(a, b, "12000", 1, at=0)
    small = _tx(a, c, "2000", 2, at=1)
    too_much = _tx(a, c, "1500", 3, at=2)
    result = settle_batch({w.id: w for w in (a, b, c)}, [large, small, too_much], _screening())
    by_id = {o.transaction_id: o for o in result.outcomes}
    assert (by_id[large.id].status, by_id[large.id].reason) == (
        Status.HELD,
        FraudReason.NEW_RECIPIENT_LARGE_AMOUNT,
    )
    assert by_id[small.id].status is Status.COMPLETED
    assert by_id[too_much.id].reason is FailureReason.INSUFFICIENT_BALANCE
    # the held 12,000 stays reserved and out of reach; the seq moved past it
    assert (a.balance, a.held, a.reserved, a.settled_seq) == (13000, 12000, 12000, 3)
    assert {p.transaction_id for p in result.postings} == {small.id}
    assert [h.tx.id for h in result.holds] == [large.id]
    assert ("transfer_held", large.id) in {(n.kind, n.transaction_id) for n in result.notifications}


def test_admins_are_told_about_each_hold() -> None:
    a, b = _wallet("20000"), _wallet("0")
    tx = _tx(a, b, "10000", 1)
    result = settle_batch({a.id: a, b.id: b}, [tx], _screening())
    admins = [uuid.uuid4(), uuid.uuid4()]
    result.tell_admins(admins)
    told = [n for n in result.notifications if n.kind == "transaction_held"]
    assert [n.user_id for n in told] == admins
    assert told[0].data["reason"] == "new_recipient_large_amount"
    assert told[0].data["debit_user_id"] == str(a.user_id)


def test_rewards_and_fees_are_never_held() -> None:
    platform, user = _wallet("1000000", kind="platform"), _wallet("50000")
    reward = _tx(platform, user, "50000", 1, kind="reward")
    fee = _tx(user, platform, "20000", 1, at=1, kind="service_fee")
    result = settle_batch({platform.id: platform, user.id: user}, [reward, fee], _screening())
    assert {o.status for o in result.outcomes} == {Status.COMPLETED}


def test_releasing_a_hold_settles_it_with_the_money_that_was_kept_aside() -> None:
    a, b = _wallet("12000"), _wallet("0")
    tx = _tx(a, b, "12000", 1)
    settle_batch({a.id: a, b.id: b}, [tx], _screening())
    assert (a.held, a.reserved) == (12000, 12000)
    result = release_held({a.id: a, b.id: b}, tx)
    assert result.outcomes[0].status is Status.COMPLETED
    assert (a.balance, a.held, a.reserved, b.balance) == (0, 0, 0, 12000)
    assert sorted(p.amount for p in result.postings) == [-12000, 12000]
    assert {n.kind for n in result.notifications} == {"transfer_sent", "transfer_received"}


def test_releasing_a_held_withdrawal_debits_it_and_sends_it_on_chain() -> None:
    user, chain = _wallet("20000"), _wallet("0", kind="external")
    tx = _tx(user, chain, "20000", 1, kind="withdrawal")
    settle_batch({user.id: user, chain.id: chain}, [tx], _screening(velocity_amount=Decimal(1)))
    result = release_held({user.id: user, chain.id: chain}, tx)
    assert (result.outcomes[0].status, result.sent_on_chain) == (Status.PENDING, [tx.id])
    assert (user.balance, user.held, user.reserved) == (0, 0, 0)


def test_rejecting_a_hold_fails_it_and_frees_the_reservation() -> None:
    a, b = _wallet("12000"), _wallet("0")
    tx = _tx(a, b, "12000", 1)
    settle_batch({a.id: a, b.id: b}, [tx], _screening())
    result = reject_held({a.id: a, b.id: b}, tx)
    assert (result.outcomes[0].status, result.outcomes[0].reason) == (
        Status.FAILED,
        FailureReason.REJECTED,
    )
    assert (a.balance, a.held, a.reserved, result.postings) == (12000, 0, 0, [])
    assert [n.kind for n in result.notifications] == ["transfer_failed"]


def test_an_unsettled_debit_that_fails_frees_its_reservation_and_unblocks_later_debits() -> None:
    a, b = _wallet("5"), _wallet("0")
    poison, later = _tx(a, b, "2", 1), _tx(a, b, "3", 2)
    result = fail_unsettled({a.id: a, b.id: b}, poison, FailureReason.SETTLEMENT_ERROR)
    assert (result.outcomes[0].status, result.outcomes[0].reason) == (
        Status.FAILED,
        FailureReason.SETTLEMENT_ERROR,
    )
    assert (a.balance, a.reserved, a.released, a.settled_seq, result.postings) == (5, 3, 2, 1, [])
    assert [n.kind for n in result.notifications] == ["transfer_failed"]
    assert settle_batch({a.id: a, b.id: b}, [later]).completed == 1


def test_an_expired_deposit_frees_the_external_accounts_reservation_without_ordering_it() -> None:
    chain, user = _wallet("0", kind="external", settled_seq=7), _wallet("0")
    deposit = _tx(chain, user, "4", 3, kind="deposit")
    result = fail_unsettled({chain.id: chain, user.id: user}, deposit, FailureReason.EXPIRED)
    assert (chain.reserved, chain.released, chain.settled_seq) == (0, 4, 7)
    assert [(n.user_id, n.kind) for n in result.notifications] == [
        (user.user_id, "deposit_expired")
    ]
