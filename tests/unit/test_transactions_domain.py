from app.domain.transactions import Status, can_move


def test_status_only_moves_forward_from_pending() -> None:
    assert can_move(Status.PENDING, Status.COMPLETED)
    assert can_move(Status.PENDING, Status.FAILED)
    assert not can_move(Status.COMPLETED, Status.FAILED)
    assert not can_move(Status.FAILED, Status.COMPLETED)
    assert not can_move(Status.COMPLETED, Status.PENDING)


def test_a_held_transaction_is_released_or_rejected_but_never_goes_back_to_held() -> None:
    assert can_move(Status.PENDING, Status.HELD)
    assert can_move(Status.HELD, Status.COMPLETED)
    assert can_move(Status.HELD, Status.FAILED)
    assert not can_move(Status.COMPLETED, Status.HELD)
    assert not can_move(Status.FAILED, Status.HELD)
    assert not Status.HELD.is_terminal and not Status.PENDING.is_terminal
    assert Status.COMPLETED.is_terminal and Status.FAILED.is_terminal
