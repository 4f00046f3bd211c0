from decimal import Decimal

from app.domain.notifications import low_balance_crossings

TEN = Decimal(10)


def _walk(armed: bool, *balances: int) -> tuple[list[Decimal], bool]:
    return low_balance_crossings(armed, TEN, [Decimal(b) for b in balances])


def test_each_drop_below_the_threshold_while_armed_alerts_once() -> None:
    assert _walk(True, 12, 9, 8, 11, 3, 2) == ([Decimal(9), Decimal(3)], False)


def test_reaching_the_threshold_exactly_arms_and_the_last_state_is_kept() -> None:
    assert _walk(False, 5, 10) == ([], True)
    assert _walk(False, 10, 9) == ([Decimal(9)], False)


def test_a_wallet_that_never_reaches_the_threshold_never_alerts() -> None:
    assert _walk(False, 1, 9, 2) == ([], False)
    assert _walk(True) == ([], True)
