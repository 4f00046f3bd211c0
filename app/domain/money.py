"""Amount arithmetic. Amounts are `Decimal` with six places, never float."""

from __future__ import annotations

from decimal import ROUND_DOWN, Decimal, InvalidOperation

PLACES = 6
QUANTUM = Decimal(1).scaleb(-PLACES)  # 0.000001
# NUMERIC(18,6): twelve integer digits.
MAX_REPRESENTABLE = Decimal("999999999999.999999")


class AmountError(ValueError):
    pass


def parse_amount(raw: object) -> Decimal:
    """Parse a client amount (decimal string or JSON number) strictly.

    Rejects floats' artefacts such as 1e400, NaN, Infinity, more than six decimals, and anything
    that would not fit NUMERIC(18,6).
    """
    if isinstance(raw, bool) or raw is None:
        raise AmountError("amount must be a decimal string or number")
    try:
        value = Decimal(str(raw).strip())
    except (InvalidOperation, ValueError):
        raise AmountError("amount is not a decimal number") from None
    if not value.is_finite():
        raise AmountError("amount must be finite")
    if value.as_tuple().exponent < -PLACES and value != value.quantize(QUANTUM, ROUND_DOWN):  # type: ignore[operator]
        raise AmountError(f"amount has more than {PLACES} decimal places")
    if abs(value) > MAX_REPRESENTABLE:
        raise AmountError("amount is too large")
    return value.quantize(QUANTUM)


def to_wire(value: Decimal | int) -> str:
    """The canonical wire form: a plain decimal string with exactly six places, e.g. "10.500000"."""
    return f"{Decimal(value).quantize(QUANTUM):f}"
