from app.domain.transactions import Status


def test_only_completed_and_failed_are_terminal() -> None:
    assert not Status.HELD.is_terminal and not Status.PENDING.is_terminal
    assert Status.COMPLETED.is_terminal and Status.FAILED.is_terminal
