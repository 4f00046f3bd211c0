"""The transaction state machine and the kinds of money movement."""

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


class Role(enum.StrEnum):
    USER = "user"
    SERVICE = "service"
    ADMIN = "admin"
    PLATFORM = "platform"
    SYSTEM = "system"


class WalletKind(enum.StrEnum):
    """`user` and `platform` wallets hold money and never go negative. `external` wallets are the
    contra accounts for money entering or leaving the ledger (issuance, the chain): their balance is
    the negative of what they brought in, which keeps every transaction double-entry."""

    USER = "user"
    PLATFORM = "platform"
    EXTERNAL = "external"


_ALLOWED = {
    Status.PENDING: {Status.HELD, Status.COMPLETED, Status.FAILED},
    # Released: COMPLETED (a withdrawal goes back to PENDING at stage `on_chain`, debited and
    # waiting for the chain, as the batch would have left it). Rejected: FAILED.
    Status.HELD: {Status.PENDING, Status.COMPLETED, Status.FAILED},
    Status.COMPLETED: set(),
    Status.FAILED: set(),
}


def can_move(old: Status, new: Status) -> bool:
    """A status only moves forward: PENDING → [HELD →] COMPLETED | FAILED."""
    return new in _ALLOWED[old]


class FailureReason(enum.StrEnum):
    INSUFFICIENT_BALANCE = "insufficient_balance"
    RECIPIENT_INACTIVE = "recipient_inactive"
    SENDER_INACTIVE = "sender_inactive"
    SETTLEMENT_ERROR = "settlement_error"
    CHAIN_REJECTED = "chain_rejected"
    EXPIRED = "expired"
    REJECTED = "rejected"  # held for fraud review, then rejected by an admin
    ADDRESS_COOLDOWN = "address_cooldown"  # a withdrawal to an address connected too recently


class FraudReason(enum.StrEnum):
    """Why settlement held a transaction (stored in `failure_reason` while it is HELD)."""

    VELOCITY_COUNT = "velocity_count"
    VELOCITY_AMOUNT = "velocity_amount"
    UNUSUAL_AMOUNT = "unusual_amount"
    NEW_RECIPIENT_LARGE_AMOUNT = "new_recipient_large_amount"
