"""Settlement decisions for a batch of PENDING transactions — pure, no I/O.

The caller loads the wallets involved (locked) and the candidate transactions; this decides, in
order, which complete, which fail and which are held for fraud review, and the resulting balances
and postings. Ordering rule: a wallet's debits settle strictly in `seq` order starting right after
its `settled_seq`; a transaction whose predecessor is not in this batch waits for a later one.
External contra accounts (issuance, chain) are exempt: they may go negative, so nothing depends on
their order.

A HELD transaction is done as far as ordering goes (`settled_seq` moves past it) but its money is
not: it stays reserved and counts in the wallet's `held`, and later debits settle against
`balance - held`. An admin later releases it (`release_held`) or rejects it (`reject_held`).
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from app.domain.accounts import WalletKind
from app.domain.fraud import Screening, is_screened
from app.domain.notifications import NewNotification, for_admins, for_outcome
from app.domain.transactions import FailureReason, FraudReason, Kind, Stage, Status


@dataclass
class WalletState:
    id: uuid.UUID
    kind: str
    balance: Decimal
    reserved: Decimal
    settled_seq: int
    is_active: bool
    user_id: uuid.UUID | None = None
    held: Decimal = Decimal(0)  # the part of `reserved` that HELD debits keep
    # Running total of reservations released (spent or given back): what settlement writes,
    # so it never touches the submit side's counters (see migration 0007).
    released: Decimal = Decimal(0)

    def release(self, amount: Decimal) -> None:
        """A reservation ends: its debit settled, failed or was rejected."""
        self.reserved -= amount
        self.released += amount

    @property
    def may_go_negative(self) -> bool:
        return self.kind == WalletKind.EXTERNAL.value

    @property
    def notified_user(self) -> uuid.UUID | None:
        """Only people are notified, not the platform or contra accounts."""
        return self.user_id if self.kind == WalletKind.USER.value else None


@dataclass(frozen=True)
class PendingTx:
    id: uuid.UUID
    debit_wallet_id: uuid.UUID
    credit_wallet_id: uuid.UUID
    amount: Decimal
    seq: int
    created_at: datetime
    kind: str = Kind.TRANSFER.value


@dataclass(frozen=True)
class Posting:
    transaction_id: uuid.UUID
    wallet_id: uuid.UUID
    amount: Decimal
    balance_after: Decimal


@dataclass(frozen=True)
class Outcome:
    transaction_id: uuid.UUID
    status: Status
    reason: FailureReason | FraudReason | None = None
    stage: str | None = None
    # The transaction decided, for the writer (kind, amount, counterparties); not part of the
    # outcome's identity.
    tx: PendingTx | None = field(default=None, compare=False, repr=False)

    @property
    def posted(self) -> bool:
        """Whether the ledger moved: two postings follow it in `BatchResult.postings`."""
        return self.status is Status.COMPLETED or self.stage == Stage.ON_CHAIN


@dataclass(frozen=True)
class Hold:
    """A transaction a fraud rule stopped; admins are told (`BatchResult.tell_admins`)."""

    tx: PendingTx
    reason: FraudReason
    debit_user: uuid.UUID | None
    credit_user: uuid.UUID | None


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    postings: list[Posting] = field(default_factory=list)
    touched: set[uuid.UUID] = field(default_factory=set)
    notifications: list[NewNotification] = field(default_factory=list)
    notify_outcomes: bool = True
    holds: list[Hold] = field(default_factory=list)

    def tell_admins(self, admins: list[uuid.UUID]) -> None:
        for hold in self.holds:
            self.notifications += for_admins(
                admins,
                kind=hold.tx.kind,
                transaction_id=hold.tx.id,
                amount=hold.tx.amount,
                reason=hold.reason.value,
                debit_user=hold.debit_user,
                credit_user=hold.credit_user,
            )

    @property
    def sent_on_chain(self) -> list[uuid.UUID]:
        """Withdrawals debited in this batch: they now wait for the chain."""
        return [o.transaction_id for o in self.outcomes if o.stage == Stage.ON_CHAIN]

    @property
    def completed(self) -> int:
        return sum(1 for o in self.outcomes if o.status is Status.COMPLETED)


def settle_batch(
    wallets: dict[uuid.UUID, WalletState],
    candidates: list[PendingTx],
    screening: Screening | None = None,
    *,
    notify_outcomes: bool = True,
) -> BatchResult:
    """Settle what can be settled, mutating `wallets` to the balances after the batch. With
    `screening`, screened debits that trip a fraud rule are HELD instead. With
    `notify_outcomes=False` the caller derives the users' outcome notifications itself (the batch
    job does, set-based in SQL, from `notifications.OUTCOME_KINDS`); admins are always told."""
    by_wallet: dict[uuid.UUID, list[PendingTx]] = defaultdict(list)
    for tx in candidates:
        by_wallet[tx.debit_wallet_id].append(tx)
    queues = {}
    for wallet_id, txs in by_wallet.items():
        txs.sort(key=lambda t: t.seq)
        run = txs if wallets[wallet_id].may_go_negative else _consecutive(wallets[wallet_id], txs)
        if run:
            queues[wallet_id] = run
    # Across wallets, settle in acceptance order (oldest head first) so a credit accepted before a
    # debit is applied first; within a wallet, strictly by seq.
    heap = [(q[0].created_at, q[0].seq, wallet_id, 0) for wallet_id, q in queues.items()]
    heapq.heapify(heap)
    result = BatchResult(notify_outcomes=notify_outcomes)
    while heap:
        _, _, wallet_id, index = heapq.heappop(heap)
        tx = queues[wallet_id][index]
        _settle_one(wallets, tx, result, screening)
        if index + 1 < len(queues[wallet_id]):
            nxt = queues[wallet_id][index + 1]
            heapq.heappush(heap, (nxt.created_at, nxt.seq, wallet_id, index + 1))
    return result


def _consecutive(wallet: WalletState, txs: list[PendingTx]) -> list[PendingTx]:
    """The run of `txs` (sorted by seq) that may settle now: settled_seq + 1, + 2, … An external
    contra account never refuses a debit, so its order does not matter and it is not held back
    by, say, a deposit still awaiting payment."""
    run = []
    expected = wallet.settled_seq + 1
    for tx in txs:
        if tx.seq != expected:
            break
        run.append(tx)
        expected += 1
    return run


def _settle_one(
    wallets: dict[uuid.UUID, WalletState],
    tx: PendingTx,
    result: BatchResult,
    screening: Screening | None = None,
) -> None:
    debit, credit = wallets[tx.debit_wallet_id], wallets[tx.credit_wallet_id]
    debit.settled_seq = max(debit.settled_seq, tx.seq)
    result.touched.add(debit.id)
    screen = screening if screening is not None and is_screened(tx.kind, debit.kind) else None
    hold = _hold_reason(debit, credit, tx, screen)
    if hold is not None:
        assert screen is not None
        screen.held(tx.debit_wallet_id, tx.amount)
        debit.held += tx.amount  # and it stays reserved
        result.outcomes.append(Outcome(tx.id, Status.HELD, hold, tx=tx))
        result.holds.append(Hold(tx, hold, debit.user_id, credit.user_id))
        if result.notify_outcomes:
            _notify(result, tx, Status.HELD, debit, credit, hold.value)
        return
    debit.release(tx.amount)
    reason = failure_reason(debit, credit, tx.amount)
    if reason is not None:
        result.outcomes.append(Outcome(tx.id, Status.FAILED, reason, tx=tx))
        if result.notify_outcomes:
            _notify(result, tx, Status.FAILED, debit, credit, reason.value)
        return
    if screen is not None:
        screen.debited(tx.kind, debit.id, credit.id, tx.amount)
    debit.balance -= tx.amount
    credit.balance += tx.amount
    result.touched.add(credit.id)
    if tx.kind == Kind.WITHDRAWAL.value:
        # Debited in the ledger, in seq order; it completes once the chain transfer is final.
        result.outcomes.append(Outcome(tx.id, Status.PENDING, stage=Stage.ON_CHAIN, tx=tx))
    else:
        result.outcomes.append(Outcome(tx.id, Status.COMPLETED, tx=tx))
        if result.notify_outcomes:
            _notify(result, tx, Status.COMPLETED, debit, credit, None)
    result.postings.append(Posting(tx.id, debit.id, -tx.amount, debit.balance))
    result.postings.append(Posting(tx.id, credit.id, tx.amount, credit.balance))


def _hold_reason(
    debit: WalletState, credit: WalletState, tx: PendingTx, screen: Screening | None
) -> FraudReason | None:
    """Screened before the balance rule; a debit that fails anyway (inactive wallet) is not held."""
    if screen is None or not debit.is_active or not credit.is_active:
        return None
    return screen.check(tx.kind, debit.id, credit.id, tx.amount)


def release_held(
    wallets: dict[uuid.UUID, WalletState], tx: PendingTx, *, notify_outcomes: bool = True
) -> BatchResult:
    """An admin releases a HELD transaction: it leaves `held` and settles now, exactly as the
    batch would have settled it. The balance rule normally passes — the money stayed reserved
    and out of later debits' reach — so a FAILED outcome here means "cannot release" (say, a
    wallet deactivated meanwhile); the caller keeps the hold instead of writing it."""
    wallets[tx.debit_wallet_id].held -= tx.amount
    result = BatchResult(notify_outcomes=notify_outcomes)
    _settle_one(wallets, tx, result)
    return result


def reject_held(
    wallets: dict[uuid.UUID, WalletState], tx: PendingTx, *, notify_outcomes: bool = True
) -> BatchResult:
    """An admin rejects a HELD transaction: FAILED `rejected`, its reservation freed."""
    wallets[tx.debit_wallet_id].held -= tx.amount
    return fail_unsettled(wallets, tx, FailureReason.REJECTED, notify_outcomes=notify_outcomes)


def fail_unsettled(
    wallets: dict[uuid.UUID, WalletState],
    tx: PendingTx,
    reason: FailureReason,
    *,
    notify_outcomes: bool = True,
) -> BatchResult:
    """A debit that will never settle fails `reason` and its reservation is freed: a rejected
    hold, a deposit never paid (`expired`), a transaction that keeps breaking settlement
    (`settlement_error`). Nothing is posted. A wallet whose order matters moves its `settled_seq`
    past it, so its later debits are not kept waiting."""
    debit, credit = wallets[tx.debit_wallet_id], wallets[tx.credit_wallet_id]
    if not debit.may_go_negative:
        debit.settled_seq = max(debit.settled_seq, tx.seq)
    debit.release(tx.amount)
    result = BatchResult(touched={debit.id}, notify_outcomes=notify_outcomes)
    result.outcomes.append(Outcome(tx.id, Status.FAILED, reason, tx=tx))
    if notify_outcomes:
        _notify(result, tx, Status.FAILED, debit, credit, reason.value)
    return result


def _notify(
    result: BatchResult,
    tx: PendingTx,
    status: Status,
    debit: WalletState,
    credit: WalletState,
    reason: str | None,
) -> None:
    result.notifications += for_outcome(
        kind=tx.kind,
        status=status.value,
        transaction_id=tx.id,
        amount=tx.amount,
        debit_user=debit.notified_user,
        credit_user=credit.notified_user,
        reason=reason,
        debit_balance=debit.balance,
        credit_balance=credit.balance,
    )


def failure_reason(
    debit: WalletState, credit: WalletState, amount: Decimal
) -> FailureReason | None:
    if not debit.is_active:
        return FailureReason.SENDER_INACTIVE
    if not credit.is_active:
        return FailureReason.RECIPIENT_INACTIVE
    if not debit.may_go_negative and debit.balance - debit.held < amount:
        return FailureReason.INSUFFICIENT_BALANCE
    return None
