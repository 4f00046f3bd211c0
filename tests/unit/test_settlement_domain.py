import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from app.domain.settlement import PendingTx, WalletState, settle_batch
from app.domain.transactions import FailureReason, Status

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _wallet(balance: str, kind: str = "user", settled_seq: int = 0) -> WalletState:
    return WalletState(uuid.uuid4(), kind, Decimal(balance), Decimal(0), settled_seq, True)


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
