"""Amount arithmetic. Amounts are `Decimal` with six places, never float."""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, Decimal

PLACES = 6
QUANTUM = Decimal(1).scaleb(-PLACES)  # 0.000001
# NUMERIC(18,6): twelve integer digits.
MAX_REPRESENTABLE = Decimal("999999999999.999999")
# The one form of a string amount (the OpenAPI document states it): ASCII digits, no exponent,
# whitespace, `_` or `+`; a positive amount is the same without the `-`.
AMOUNT_PATTERN = r"^-?[0-9]{1,12}(\.[0-9]{1,6})?$"
POSITIVE_AMOUNT_PATTERN = AMOUNT_PATTERN.replace("-?", "", 1)
_AMOUNT = re.compile(AMOUNT_PATTERN.removeprefix("^").removesuffix("$"))


class AmountError(ValueError):
    pass


def parse_amount(raw: object) -> Decimal:
    """Parse a client amount strictly: a string matching `AMOUNT_PATTERN`, or a JSON number (int
    or float, read from its shortest text, never its binary value) with at most six decimals that
    fits NUMERIC(18,6). Anything else (NaN, Infinity, 1e999999999, "1_000", " 1", "١٢") is an
    `AmountError`, never an arithmetic exception."""
    if isinstance(raw, str):
        if not _AMOUNT.fullmatch(raw):
            raise AmountError(
                "amount must be a decimal string of up to 12 digits and 6 decimals, e.g. "
                '"10.5" (ASCII digits; no exponent, sign other than a leading -, spaces or _)'
            )
        return Decimal(raw).quantize(QUANTUM)
    if isinstance(raw, bool) or not isinstance(raw, int | float | Decimal):
        raise AmountError("amount must be a decimal string or number")
    if isinstance(raw, int) and abs(raw) > MAX_REPRESENTABLE:  # before any conversion of a huge int
        raise AmountError("amount is too large")
    value = Decimal(str(raw)) if isinstance(raw, float) else Decimal(raw)
    if not value.is_finite():
        raise AmountError("amount must be finite")
    # copy_abs and the exponent are exact; arithmetic such as abs() could overflow the context
    if value.copy_abs() > MAX_REPRESENTABLE:
        raise AmountError("amount is too large")
    if value.as_tuple().exponent < -PLACES and value != value.quantize(QUANTUM, ROUND_DOWN):  # type: ignore[operator]
        raise AmountError(f"amount has more than {PLACES} decimal places")
    return value.quantize(QUANTUM)


def to_wire(value: Decimal | int) -> str:
    """The canonical wire form: a plain decimal string with exactly six places, e.g. "10.500000"."""
    return f"{Decimal(value).quantize(QUANTUM):f}"
