import uuid
from decimal import Decimal

from app.domain.fraud import (
    FraudThresholds,
    Screening,
    SenderStats,
    VelocityBounds,
    assess,
    is_screened,
)
from app.domain.transactions import FraudReason

LIMITS = FraudThresholds(
    velocity_count=10,
    velocity_amount=Decimal("1000"),
    history_min=5,
    history_multiplier=Decimal("10"),
    history_window=50,
    new_recipient_amount=Decimal("500"),
)


def _assess(
    amount: str,
    stats: SenderStats | None = None,
    *,
    known: bool = True,
    kind: str = "transfer",
) -> FraudReason | None:
    return assess(kind, Decimal(amount), stats or SenderStats(), known, LIMITS)


def test_a_clean_transfer_is_not_held() -> None:
    assert _assess("10", SenderStats(3, Decimal("30"), 3, Decimal("30"))) is None


def test_the_transfer_that_goes_over_the_hourly_count_is_held() -> None:
    assert _assess("1", SenderStats(hour_count=9)) is None  # the 10th is allowed
    assert _assess("1", SenderStats(hour_count=10)) is FraudReason.VELOCITY_COUNT


def test_the_transfer_that_goes_over_the_hourly_amount_is_held() -> None:
    assert _assess("100", SenderStats(hour_count=1, hour_amount=Decimal("900"))) is None
    held = _assess("100.000001", SenderStats(hour_count=1, hour_amount=Decimal("900")))
    assert held is FraudReason.VELOCITY_AMOUNT


def test_an_amount_far_above_the_senders_average_is_held_once_there_is_enough_history() -> None:
    five_of_ten = SenderStats(5, Decimal("50"), 5, Decimal("50"))
    assert _assess("100", five_of_ten) is None  # exactly 10× the average
    assert _assess("100.000001", five_of_ten) is FraudReason.UNUSUAL_AMOUNT
    four_of_ten = SenderStats(4, Decimal("40"), 4, Decimal("40"))
    assert _assess("400", four_of_ten) is None  # too little history to judge


def test_a_large_first_transfer_to_a_recipient_is_held_but_not_to_a_known_one() -> None:
    assert _assess("499.999999", known=False) is None
    assert _assess("500", known=False) is FraudReason.NEW_RECIPIENT_LARGE_AMOUNT
    assert _assess("500", known=True) is None


def test_withdrawals_are_not_judged_by_the_new_recipient_rule() -> None:
    assert _assess("500", known=False, kind="withdrawal") is None
    assert _assess("1", SenderStats(hour_count=10), kind="withdrawal") is (
        FraudReason.VELOCITY_COUNT
    )


def test_velocity_is_reported_before_the_other_rules() -> None:
    stats = SenderStats(10, Decimal("50"), 5, Decimal("50"))
    assert _assess("600", stats, known=False) is FraudReason.VELOCITY_COUNT


def test_only_user_transfers_and_withdrawals_are_screened() -> None:
    assert is_screened("transfer", "user") and is_screened("withdrawal", "user")
    assert not is_screened("reward", "platform")
    assert not is_screened("service_fee", "user")
    assert not is_screened("refund", "user")
    assert not is_screened("transfer", "platform")


def test_earlier_transactions_of_the_batch_count_towards_velocity_history_and_recipients() -> None:
    sender, recipient = uuid.uuid4(), uuid.uuid4()
    screening = Screening(LIMITS)
    for _ in range(5):
        assert screening.check("transfer", sender, recipient, Decimal("10")) is None
        screening.debited("transfer", sender, recipient, Decimal("10"))
    # five debits of 10 in this batch: 101 is unusual, and the recipient is now known
    assert screening.check("transfer", sender, recipient, Decimal("101")) is (
        FraudReason.UNUSUAL_AMOUNT
    )
    assert screening.check("transfer", sender, recipient, Decimal("100")) is None
    assert (sender, recipient) in screening.known_pairs
    for _ in range(4):
        screening.held(sender, Decimal("1"))
    assert screening.senders[sender].hour_count == 9
    assert screening.senders[sender].history_count == 5  # holds are not history
    screening.debited("transfer", sender, recipient, Decimal("1"))
    assert screening.check("transfer", sender, recipient, Decimal("1")) is (
        FraudReason.VELOCITY_COUNT
    )


def test_a_senders_velocity_bound_is_used_only_while_no_debit_of_the_batch_could_trip_a_limit() -> (
    None
):
    sender, recipient = uuid.uuid4(), uuid.uuid4()
    bounds = VelocityBounds(LIMITS)
    assert bounds.needs_count(sender, [Decimal("1")])  # never counted yet

    screening = Screening(LIMITS, {sender: SenderStats(6, Decimal("600"))})
    screening.debited("transfer", sender, recipient, Decimal("100"))
    screening.held(sender, Decimal("50"))
    bounds.remember(screening)
    assert bounds.bound(sender) == (8, Decimal("750"))  # what was counted plus the batch

    # 8 + 2 debits reach the count limit (10, this one included) without going over it
    assert not bounds.needs_count(sender, [Decimal("1"), Decimal("249")])
    assert bounds.needs_count(sender, [Decimal("1"), Decimal("1"), Decimal("1")])  # 11
    assert bounds.needs_count(sender, [Decimal("250.000001")])  # 1000.000001 > 1000
    assert bounds.needs_count(uuid.uuid4(), [])
