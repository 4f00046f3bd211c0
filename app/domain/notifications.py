"""Which users learn what when a transaction settles — pure rules."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from app.domain.transactions import Kind, Status

# (transaction kind, final status) → (kind told to the debited user, kind told to the credited).
OUTCOME_KINDS: dict[tuple[str, str], tuple[str | None, str | None]] = {
    (Kind.TRANSFER, Status.COMPLETED): ("transfer_sent", "transfer_received"),
    (Kind.TRANSFER, Status.FAILED): ("transfer_failed", None),
    (Kind.TRANSFER, Status.HELD): ("transfer_held", None),
    (Kind.SERVICE_FEE, Status.COMPLETED): ("service_fee_charged", None),
    (Kind.REWARD, Status.COMPLETED): (None, "reward_received"),
    (Kind.REFUND, Status.COMPLETED): ("refund_debited", "refund_received"),
    (Kind.DEPOSIT, Status.COMPLETED): (None, "deposit_confirmed"),
    (Kind.DEPOSIT, Status.FAILED): (None, "deposit_expired"),
    (Kind.WITHDRAWAL, Status.COMPLETED): ("withdrawal_completed", None),
    (Kind.WITHDRAWAL, Status.FAILED): ("withdrawal_failed", None),
    (Kind.WITHDRAWAL, Status.HELD): ("withdrawal_held", None),
}
LOW_BALANCE = "low_balance"
# Escrow holds, told to the user whose money is held.
HOLD_PLACED = "hold_placed"
HOLD_CAPTURED = "hold_captured"
HOLD_RELEASED = "hold_released"
TRANSACTION_HELD = "transaction_held"  # told to every admin


@dataclass(frozen=True)
class NewNotification:
    user_id: uuid.UUID
    kind: str
    transaction_id: uuid.UUID | None
    amount: Decimal | None
    data: dict[str, Any] = field(default_factory=dict)


def for_outcome(
    *,
    kind: str,
    status: str,
    transaction_id: uuid.UUID,
    amount: Decimal,
    debit_user: uuid.UUID | None,
    credit_user: uuid.UUID | None,
    reason: str | None = None,
    debit_balance: Decimal | None = None,
    credit_balance: Decimal | None = None,
) -> list[NewNotification]:
    """Notifications for the users (not system accounts: pass None) a final outcome affects.
    Amounts are signed from each recipient's side."""
    debit_kind, credit_kind = OUTCOME_KINDS.get((kind, status), (None, None))
    found = []
    if debit_kind and debit_user is not None:
        data = {"status": status, "failure_reason": reason, "balance_after": debit_balance}
        found.append(NewNotification(debit_user, debit_kind, transaction_id, -amount, data))
    if credit_kind and credit_user is not None:
        data = {"status": status, "failure_reason": reason, "balance_after": credit_balance}
        found.append(NewNotification(credit_user, credit_kind, transaction_id, amount, data))
    return found


def for_admins(
    admins: list[uuid.UUID],
    *,
    kind: str,
    transaction_id: uuid.UUID,
    amount: Decimal,
    reason: str,
    debit_user: uuid.UUID | None,
    credit_user: uuid.UUID | None,
) -> list[NewNotification]:
    """A transaction held for review: every admin is told, with the rule it tripped."""
    data = {
        "status": Status.HELD.value,
        "reason": reason,
        "transaction_kind": kind,
        "debit_user_id": str(debit_user) if debit_user else None,
        "credit_user_id": str(credit_user) if credit_user else None,
    }
    return [
        NewNotification(admin, TRANSACTION_HELD, transaction_id, amount, dict(data))
        for admin in admins
    ]


def low_balance_alert(user_id: uuid.UUID, balance: Decimal, threshold: Decimal) -> NewNotification:
    return NewNotification(
        user_id, LOW_BALANCE, None, balance, {"threshold": threshold, "balance": balance}
    )


def low_balance_crossings(
    armed: bool, threshold: Decimal, balances: Iterable[Decimal]
) -> tuple[list[Decimal], bool]:
    """Walk a wallet's balances in the order they were written: each drop below `threshold`
    while armed is one alert (at the balance it dropped to) and disarms the wallet; getting back
    to the threshold re-arms it. Returns the balances that alert and whether it ends armed."""
    alerts = []
    for balance in balances:
        if armed and balance < threshold:
            alerts.append(balance)
            armed = False
        elif not armed and balance >= threshold:
            armed = True
    return alerts, armed
