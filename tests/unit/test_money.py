from decimal import Decimal

import pytest

from app.domain.money import AmountError, parse_amount, to_wire


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("10.5", "10.500000"),
        (10, "10.000000"),
        ("0.000001", "0.000001"),
        ("999999999999.999999", "999999999999.999999"),
        (1.5, "1.500000"),
        (-2, "-2.000000"),
    ],
)
def test_amounts_are_parsed_exactly_and_quantized_to_six_places(raw: object, expected: str) -> None:
    assert parse_amount(raw) == Decimal(expected)
    assert to_wire(parse_amount(raw)) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "1.0000001",
        "1e400",
        "NaN",
        "Infinity",
        "abc",
        "",
        None,
        True,
        "1000000000000",
        # one documented pattern: no exponent, whitespace, `_`, `+`, non-ASCII digits, or more
        # than six written decimals (even zeros)
        "1e999999999",
        "1E-999999999",
        "\u0661\u0662",  # Arabic-Indic digits
        "\uff11",  # fullwidth digit one
        " 1",
        "1\n",
        "1_000",
        "+1",
        ".5",
        "1.",
        "1.230000000",
        # numbers: finite, at most six decimals, twelve integer digits
        float("inf"),
        float("nan"),
        1e300,
        1e-7,
        10**4000,
        Decimal("1e999999999"),
        [1],
    ],
)
def test_malformed_or_oversized_amounts_are_rejected(raw: object) -> None:
    with pytest.raises(AmountError):
        parse_amount(raw)


def test_a_json_float_is_parsed_from_its_text_not_its_binary_value() -> None:
    assert parse_amount(0.1) == Decimal("0.100000")
