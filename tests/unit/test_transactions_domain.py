from app.domain.transactions import Status, can_move


def test_status_only_moves_forward_from_pending() -> None:
    assert can_move(Status.PENDING, Status.COMPLETED)
    assert can_move(Status.PENDING, Status.FAILED)
    assert not can_move(Status.COMPLETED, Status.FAILED)
    assert not can_move(Status.FAILED, Status.COMPLETED)
    assert not can_move(Status.COMPLETED, Status.PENDING)
