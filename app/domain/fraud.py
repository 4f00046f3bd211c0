"""Fraud rules applied at settlement — pure, no I/O.

Only user-initiated debits of a user wallet are screened: transfers and withdrawals. The caller
loads, for every sender of a batch at once, what the sender has *debited* (completed, or a
withdrawal already debited and on its way on-chain) and what is HELD:

- velocity: debits + holds created in the last hour (count and amount);
- history: count and total of the last `history_window` debits (holds excluded);
- recipients: which (sender, recipient) pairs already have a completed transfer.

`Screening` then decides transaction by transaction in settlement order, counting what earlier
transactions of the same batch added, so a burst split over one batch is judged like the same
burst spread over several. The history window is the last N *before* the batch plus the batch's
earlier debits. The new-recipient rule applies to transfers only: a withdrawal goes to the
user's own connected address, proven by a signature.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from decimal import Decimal

from app.domain.accounts import WalletKind
from app.domain.transactions import FraudReason, Kind

SCREENED_KINDS = frozenset({Kind.TRANSFER.value, Kind.WITHDRAWAL.value})
_USER_WALLET = WalletKind.USER.value  # plain str: this runs once per settled transaction


@dataclass(frozen=True)
class FraudThresholds:
    velocity_count: int = 1000  # debits per sender per hour, this one included
    velocity_amount: Decimal = Decimal("1000000")  # amount per sender per hour
    history_min: int = 5  # debits needed before the sender's average means anything
    history_multiplier: Decimal = Decimal("10")  # "far above" = more than this × the average
    history_window: int = 50  # the sender's last N debits make the average
    new_recipient_amount: Decimal = Decimal("10000")  # first transfer to someone, this or more


@dataclass
class SenderStats:
    hour_count: int = 0
    hour_amount: Decimal = Decimal(0)
    history_count: int = 0
    history_total: Decimal = Decimal(0)

    @property
    def history_average(self) -> Decimal:
        return self.history_total / self.history_count if self.history_count else Decimal(0)


def is_screened(kind: str, debit_wallet_kind: str) -> bool:
    return debit_wallet_kind == _USER_WALLET and kind in SCREENED_KINDS


def assess(
    kind: str,
    amount: Decimal,
    stats: SenderStats,
    known_recipient: bool,
    thresholds: FraudThresholds,
) -> FraudReason | None:
    """The first rule `amount` trips, given what the sender did before it; None when clean."""
    if stats.hour_count + 1 > thresholds.velocity_count:
        return FraudReason.VELOCITY_COUNT
    if stats.hour_amount + amount > thresholds.velocity_amount:
        return FraudReason.VELOCITY_AMOUNT
    if (
        stats.history_count >= thresholds.history_min
        and amount > thresholds.history_multiplier * stats.history_average
    ):
        return FraudReason.UNUSUAL_AMOUNT
    if (
        kind == Kind.TRANSFER.value
        and not known_recipient
        and amount >= thresholds.new_recipient_amount
    ):
        return FraudReason.NEW_RECIPIENT_LARGE_AMOUNT
    return None


@dataclass
class VelocityBounds:
    """Upper bounds of each sender's velocity figures (debits and holds of the last hour: count,
    amount), kept by one settlement job for as long as it owns its shard, so that most batches
    need not count a sender's last hour again: that count grows with how much the sender sends,
    and it was most of a batch's screening time.

    They stay upper bounds: while the job owns the shard, only the job adds to a sender's
    screened debits (a wallet is debited by its own shard's job only; an admin releasing a hold
    or a withdrawal completing on chain changes a transaction already counted), and everything
    else only lowers the real figures (an admin's rejection, a failed withdrawal, the hour
    moving on). A batch's decisions are added as it makes them, and kept even when the batch
    then rolls back: the bound is only looser.

    Decisions stay exactly those of the real figures: a debit trips velocity when count + 1 or
    amount + its amount goes over a limit. When the bound plus everything the batch could add
    stays within both limits, no debit of the batch trips either, whatever the real figures are;
    otherwise the sender is counted again (`needs_count`)."""

    thresholds: FraudThresholds
    bounds: dict[uuid.UUID, tuple[int, Decimal]] = field(default_factory=dict)

    def needs_count(self, sender: uuid.UUID, amounts: list[Decimal]) -> bool:
        """Whether the batch's screened debits of `sender` (`amounts`) need the real figures."""
        bound = self.bounds.get(sender)
        if bound is None:
            return True
        count, total = bound
        return (
            count + len(amounts) > self.thresholds.velocity_count
            or total + sum(amounts, Decimal(0)) > self.thresholds.velocity_amount
        )

    def bound(self, sender: uuid.UUID) -> tuple[int, Decimal]:
        return self.bounds[sender]

    def remember(self, screening: Screening) -> None:
        """After a batch has been decided: its senders' figures, with what it added."""
        for sender, stats in screening.senders.items():
            self.bounds[sender] = (stats.hour_count, stats.hour_amount)


@dataclass
class Screening:
    """The fraud view of one settlement batch: loaded stats, updated as the batch settles."""

    thresholds: FraudThresholds
    senders: dict[uuid.UUID, SenderStats] = field(default_factory=dict)
    known_pairs: set[tuple[uuid.UUID, uuid.UUID]] = field(default_factory=set)

    def check(
        self, kind: str, debit_wallet_id: uuid.UUID, credit_wallet_id: uuid.UUID, amount: Decimal
    ) -> FraudReason | None:
        return assess(
            kind,
            amount,
            self.senders.get(debit_wallet_id, SenderStats()),
            (debit_wallet_id, credit_wallet_id) in self.known_pairs,
            self.thresholds,
        )

    def held(self, debit_wallet_id: uuid.UUID, amount: Decimal) -> None:
        """A hold counts towards velocity (the money may still move) but not the history."""
        stats = self.senders.setdefault(debit_wallet_id, SenderStats())
        stats.hour_count += 1
        stats.hour_amount += amount

    def debited(
        self, kind: str, debit_wallet_id: uuid.UUID, credit_wallet_id: uuid.UUID, amount: Decimal
    ) -> None:
        stats = self.senders.setdefault(debit_wallet_id, SenderStats())
        stats.hour_count += 1
        stats.hour_amount += amount
        stats.history_count += 1
        stats.history_total += amount
        if kind == Kind.TRANSFER.value:
            self.known_pairs.add((debit_wallet_id, credit_wallet_id))
