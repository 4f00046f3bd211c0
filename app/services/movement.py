"""The shared kernel of every money-moving use case: who asks (`Caller`), how a retry is
recognised (`Idempotency`), and the per-transaction limit (`check_limit`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from app.bootstrap import Wiring
from app.domain.errors import AmountTooLargeError
from app.domain.money import to_wire


@dataclass(frozen=True)
class Caller:
    user_id: uuid.UUID
    wallet_id: uuid.UUID


@dataclass(frozen=True)
class Idempotency:
    key: str
    digest: str


def check_limit(wiring: Wiring, amount: Decimal) -> None:
    if amount > wiring.config.max_transfer_amount:
        raise AmountTooLargeError(
            f"at most {to_wire(wiring.config.max_transfer_amount)} per transaction"
        )
