"""Work a commit makes possible is enqueued only once it has committed (app.db.after_commit)."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import text

from app.db import after_commit


def test_actions_run_after_the_commit_and_see_its_effects(db: Any) -> None:
    seen: list[int] = []
    with db.transaction() as session:
        session.execute(text("CREATE TEMP TABLE IF NOT EXISTS t_after (n int)"))
        after_commit(session, lambda: seen.append(1))
        assert seen == []  # not before the commit
    assert seen == [1]


def test_actions_never_run_when_the_unit_of_work_rolls_back(db: Any) -> None:
    seen: list[int] = []
    with pytest.raises(RuntimeError), db.transaction() as session:
        after_commit(session, lambda: seen.append(1))
        raise RuntimeError("refused")
    with db.transaction() as session:  # the next unit of work on a pooled session starts clean
        session.execute(text("SELECT 1"))
    assert seen == []


def test_a_failing_action_does_not_stop_the_others(db: Any) -> None:
    seen: list[str] = []

    def broken() -> None:
        raise ConnectionError("broker down")

    with db.transaction() as session:
        after_commit(session, broken)
        after_commit(session, lambda: seen.append("kicked"))
    assert seen == ["kicked"]
