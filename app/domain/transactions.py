"""The kinds of money movement, their statuses and stages.

A status only moves forward: PENDING → [HELD →] COMPLETED | FAILED. The writers enforce it in
SQL (every status change is a compare-and-set on the status it moves from), not in Python."""

from __future__ import annotations

import enum


class Kind(enum.StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    TRANSFER = "transfer"
    SERVICE_FEE = "service_fee"
    REWARD = "reward"
    REFUND = "refund"
    ISSUANCE = "issuance"


class Status(enum.StrEnum):
    PENDING = "pending"
    # Stopped by a fraud rule at settlement: still reserved, waiting for an admin's decision.
    HELD = "held"
    COMPLETED = "completed"
    FAILED = "failed"

    @property
    def is_terminal(self) -> bool:
        return self in (Status.COMPLETED, Status.FAILED)


class Stage(enum.StrEnum):
    """Where a chain-bound transaction is while PENDING (`stage` is NULL for ledger-only ones)."""

    AWAITING_PAYMENT = "awaiting_payment"  # a deposit request, until its payment is seen
    ON_CHAIN = "on_chain"  # a debited withdrawal, until the chain confirms or rejects it
    # A high-value transfer or withdrawal, reserved but unsequenced, until the connected wallet
    # signs its confirmation (step-up).
    AWAITING_CONFIRMATION = "awaiting_confirmation"


class FailureReason(enum.StrEnum):
    INSUFFICIENT_BALANCE = "insufficient_balance"
    RECIPIENT_INACTIVE = "recipient_inactive"
    SENDER_INACTIVE = "sender_inactive"
    SETTLEMENT_ERROR = "settlement_error"
    CHAIN_REJECTED = "chain_rejected"
    EXPIRED = "expired"
    REJECTED = "rejected"  # held for fraud review, then rejected by an admin
    ADDRESS_COOLDOWN = "address_cooldown"  # a withdrawal to an address connected too recently
    UNCONFIRMED = "unconfirmed"  # a step-up confirmation that never came


class FraudReason(enum.StrEnum):
    """Why settlement held a transaction (stored in `failure_reason` while it is HELD)."""

    VELOCITY_COUNT = "velocity_count"
    VELOCITY_AMOUNT = "velocity_amount"
    UNUSUAL_AMOUNT = "unusual_amount"
    NEW_RECIPIENT_LARGE_AMOUNT = "new_recipient_large_amount"
