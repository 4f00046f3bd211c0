from decimal import Decimal

import pytest

from app.domain.money import AmountError, parse_amount, to_wire


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.5", "10.500000"),
        (10, "10.000000"),
        ("0.000001", "0.000001"),
        ("1.230000000", "1.230000"),
    ],
)
def test_amounts_are_parsed_exactly_and_quantized_to_six_places(raw: object, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)
    assert to_wire(parse_amount(raw)) == expected


@pytest.mark.parametrize(
    "raw", ["1.0000001", "1e400", "NaN", "Infinity", "abc", "", None, True, "1000000000000"]
)
def test_malformed_or_oversized_amounts_are_rejected(raw: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(raw)


def test_a_json_float_is_parsed_from_its_text_not_its_binary_value() -> None:
    assert parse_amount(0.1) == Decimal("0.100000")
