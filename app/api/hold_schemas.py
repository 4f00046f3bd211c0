"""Schemas of escrow holds (the service API places and decides them; users see theirs)."""

from __future__ import annotations

import marshmallow as ma

from app.api.context import wiring
from app.api.schemas import REASON_MAX, Amount, StrictSchema, Text


def _within_the_longest_hold(value: int) -> None:
    longest = wiring().config.hold_max_expiry_seconds
    if value > longest:
        raise ma.ValidationError(f"must be at most {longest} (HOLD_MAX_EXPIRY_SECONDS)")


class HoldRequestSchema(StrictSchema):
    user_id = ma.fields.UUID(required=True)
    amount = Amount(required=True, positive=True)
    reason = Text(required=True, validate=ma.validate.Length(min=1, max=REASON_MAX))
    expires_in_seconds = ma.fields.Integer(
        load_default=None,
        allow_none=True,
        validate=[ma.validate.Range(min=1), _within_the_longest_hold],
        metadata={
            "description": "Released automatically after this long: at least 1, at most "
            "HOLD_MAX_EXPIRY_SECONDS; default HOLD_DEFAULT_EXPIRY_SECONDS (7 days)."
        },
    )


class CaptureRequestSchema(StrictSchema):
    amount = Amount(
        positive=True,
        load_default=None,
        allow_none=True,
        metadata={"description": "At most the held amount; default all of it."},
    )
    recipient_id = ma.fields.UUID(
        load_default=None,
        allow_none=True,
        metadata={"description": "A user to pay; default the platform wallet (a fee)."},
    )


class HoldSchema(ma.Schema):
    hold_id = ma.fields.UUID()
    status = ma.fields.String(metadata={"enum": ["active", "captured", "released"]})
    amount = Amount()
    expires_at = ma.fields.DateTime()


class CaptureResponseSchema(ma.Schema):
    hold_id = ma.fields.UUID()
    status = ma.fields.String()
    amount = Amount()
    captured_amount = Amount()
    released_amount = Amount()
    transaction_id = ma.fields.UUID(
        metadata={"description": "The PENDING transaction moving the captured amount."}
    )


class VoidResponseSchema(ma.Schema):
    hold_id = ma.fields.UUID()
    status = ma.fields.String()
    amount = Amount()
    released_amount = Amount()
    release_reason = ma.fields.String(allow_none=True)


class UserHoldSchema(ma.Schema):
    hold_id = ma.fields.UUID()
    amount = Amount()
    reason = ma.fields.String()
    status = ma.fields.String()
    created_at = ma.fields.DateTime()
    expires_at = ma.fields.DateTime()


class UserHoldsSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UserHoldSchema))
