"""Money requests answer their reply body as built (`app.api.http.reply`), not dumped through the
documented response schema: each kind of body must be exactly what its schema would dump."""

import uuid
from decimal import Decimal

from app.api.schemas import RewardResponseSchema, SubmissionResponseSchema
from app.services.submission import pending_reply, settled_reply
from app.services.transfers import rewards_reply


def test_a_pending_reply_is_what_the_submission_schema_dumps() -> None:
    body = pending_reply(uuid.uuid4()).body
    assert SubmissionResponseSchema().dump(body) == body


def test_settled_replies_are_what_the_submission_schema_dumps() -> None:
    pending = pending_reply(uuid.uuid4())
    completed = settled_reply(pending, "completed", Decimal("12.5"), None).body
    failed = settled_reply(pending, "failed", None, "insufficient_balance").body
    assert SubmissionResponseSchema().dump(completed) == completed
    assert completed["balance_after"] == "12.500000" and completed["success"] is True
    assert SubmissionResponseSchema().dump(failed) == failed
    assert failed["success"] is False and failed["failure_reason"] == "insufficient_balance"


def test_reward_replies_are_what_the_reward_schema_dumps() -> None:
    for count in (1, 3):
        body = rewards_reply([uuid.uuid4() for _ in range(count)]).body
        assert RewardResponseSchema().dump(body) == body
        assert body["count"] == count and ("transaction_id" in body) == (count == 1)
