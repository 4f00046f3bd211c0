"""Settlement decisions for a batch of PENDING transactions — pure, no I/O.

The caller loads the wallets involved (locked) and the candidate transactions; this decides, in
order, which complete and which fail, and the resulting balances and postings. Ordering rule: a
wallet's debits settle strictly in `seq` order starting right after its `settled_seq`; a
transaction whose predecessor is not in this batch waits for a later one. External contra
accounts (issuance, chain) are exempt: they may go negative, so nothing depends on their order.
"""

from __future__ import annotations

import heapq
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from app.domain.notifications import NewNotification, for_outcome
from app.domain.transactions import FailureReason, Kind, Status, WalletKind

ON_CHAIN = "on_chain"


@dataclass
class WalletState:
    id: uuid.UUID
    kind: str
    balance: Decimal
    reserved: Decimal
    settled_seq: int
    is_active: bool
    user_id: uuid.UUID | None = None

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
    reason: FailureReason | None = None
    stage: str | None = None


@dataclass
class BatchResult:
    outcomes: list[Outcome] = field(default_factory=list)
    postings: list[Posting] = field(default_factory=list)
    touched: set[uuid.UUID] = field(default_factory=set)
    notifications: list[NewNotification] = field(default_factory=list)

    @property
    def sent_on_chain(self) -> list[uuid.UUID]:
        """Withdrawals debited in this batch: they now wait for the chain."""
        return [o.transaction_id for o in self.outcomes if o.stage == ON_CHAIN]

    @property
    def completed(self) -> int:
        return sum(1 for o in self.outcomes if o.status is Status.COMPLETED)


def settle_batch(wallets: dict[uuid.UUID, WalletState], candidates: list[PendingTx]) -> BatchResult:
    """Settle what can be settled, mutating `wallets` to the balances after the batch."""
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
    result = BatchResult()
    while heap:
        _, _, wallet_id, index = heapq.heappop(heap)
        tx = queues[wallet_id][index]
        _settle_one(wallets, tx, result)
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


def _settle_one(wallets: dict[uuid.UUID, WalletState], tx: PendingTx, result: BatchResult) -> None:
    debit, credit = wallets[tx.debit_wallet_id], wallets[tx.credit_wallet_id]
    debit.reserved -= tx.amount
    debit.settled_seq = max(debit.settled_seq, tx.seq)
    result.touched.add(debit.id)
    reason = failure_reason(debit, credit, tx.amount)
    if reason is not None:
        result.outcomes.append(Outcome(tx.id, Status.FAILED, reason))
        _notify(result, tx, Status.FAILED, debit, credit, reason.value)
        return
    debit.balance -= tx.amount
    credit.balance += tx.amount
    result.touched.add(credit.id)
    if tx.kind == Kind.WITHDRAWAL.value:
        # Debited in the ledger, in seq order; it completes once the chain transfer is final.
        result.outcomes.append(Outcome(tx.id, Status.PENDING, stage=ON_CHAIN))
    else:
        result.outcomes.append(Outcome(tx.id, Status.COMPLETED))
        _notify(result, tx, Status.COMPLETED, debit, credit, None)
    result.postings.append(Posting(tx.id, debit.id, -tx.amount, debit.balance))
    result.postings.append(Posting(tx.id, credit.id, tx.amount, credit.balance))


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
    if not debit.may_go_negative and debit.balance < amount:
        return FailureReason.INSUFFICIENT_BALANCE
    return None
