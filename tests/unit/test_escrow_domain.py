"""Escrow-hold rules in memory: what a capture takes and releases, and when a hold is decidable."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from app.domain.errors import CaptureExceedsHoldError, HoldNotActiveError
from app.domain.escrow import Capture, capture_of, check_decidable

NOW = datetime(2026, 11, 29, 6, 0, tzinfo=UTC)


def test_a_capture_takes_all_by_default_or_part_and_releases_the_rest() -> None:
    assert capture_of(Decimal(60), None) == Capture(Decimal(60), Decimal(0))
    assert capture_of(Decimal(60), Decimal(25)) == Capture(Decimal(25), Decimal(35))
    assert capture_of(Decimal(60), Decimal(60)) == Capture(Decimal(60), Decimal(0))


def test_a_capture_never_exceeds_the_hold() -> None:
    with pytest.raises(CaptureExceedsHoldError) as refused:
        capture_of(Decimal(60), Decimal("60.000001"))
    assert refused.value.extra == {"held": "60.000000"}


@pytest.mark.parametrize(
    ("status", "expires_in", "refused_as"),
    [
        ("active", timedelta(seconds=1), None),
        ("active", timedelta(0), "expired"),
        ("captured", timedelta(days=1), "captured"),
        ("released", timedelta(days=1), "released"),
    ],
)
def test_only_an_active_unexpired_hold_is_decidable(
    status: str, expires_in: timedelta, refused_as: str | None
) -> None:
    if refused_as is None:
        check_decidable(status, NOW + expires_in, NOW)
        return
    with pytest.raises(HoldNotActiveError) as refused:
        check_decidable(status, NOW + expires_in, NOW)
    assert refused.value.extra == {"hold_status": refused_as}
