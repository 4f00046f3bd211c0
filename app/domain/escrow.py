"""Escrow-hold rules — pure: what a capture takes and gives back, and whether a hold may still
be decided. The services lock the hold row and apply the outcome (`app.services.escrow`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from app.domain.errors import CaptureExceedsHoldError, HoldNotActiveError
from app.domain.money import to_wire

ACTIVE, CAPTURED, RELEASED = "active", "captured", "released"


@dataclass(frozen=True)
class Capture:
    captured: Decimal  # moves, as a PENDING transaction
    released: Decimal  # back to the available balance at once


def capture_of(held: Decimal, requested: Decimal | None) -> Capture:
    """All of the hold by default; never more than it (`capture_exceeds_hold`)."""
    captured = held if requested is None else requested
    if captured > held:
        raise CaptureExceedsHoldError(f"at most {to_wire(held)} is held", held=to_wire(held))
    return Capture(captured, held - captured)


def check_decidable(status: str, expires_at: datetime, now: datetime) -> None:
    """A hold is captured only while active and not expired: once past its expiry it belongs to
    the expiry job (which releases it), so a capture racing the expiry cannot both win."""
    if status != ACTIVE:
        raise HoldNotActiveError(f"the hold was {status}", hold_status=status)
    if expires_at <= now:
        raise HoldNotActiveError("the hold has expired", hold_status="expired")
