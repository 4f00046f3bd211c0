"""Marshmallow schemas shared by the blueprints; the OpenAPI document is generated from them."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC
from decimal import Decimal
from typing import Any

import marshmallow as ma

from app.domain.money import (
    AMOUNT_PATTERN,
    POSITIVE_AMOUNT_PATTERN,
    AmountError,
    parse_amount,
    to_wire,
)
from app.domain.transactions import Kind, Status


class Amount(ma.fields.Field):
    """A decimal amount: accepts a decimal string or a JSON number, answers a string with six
    places ("10.500000"). Floats never touch the value: numbers are parsed from their text.
    Strings must match the documented pattern (`app.domain.money.AMOUNT_PATTERN`); a positive
    amount's pattern has no sign."""

    def __init__(self, *, positive: bool = False, **kwargs: Any) -> None:
        pattern = POSITIVE_AMOUNT_PATTERN if positive else AMOUNT_PATTERN
        metadata = {
            # Requests may send a JSON number (README, Amounts): the document must say so.
            "anyOf": [{"type": "string", "pattern": pattern}, {"type": "number"}],
            "description": "A decimal string (answers always send one): ASCII digits, at most 12 "
            "before and 6 after the point, no exponent, spaces or `_`. Requests may send a JSON "
            "number with at most 6 decimals and 12 integer digits instead."
            + (" Greater than zero." if positive else ""),
            "example": "10.500000",
            **kwargs.pop("metadata", {}),
        }
        super().__init__(metadata=metadata, **kwargs)
        self.positive = positive

    def _serialize(
        self, value: Decimal | None, attr: str | None, obj: Any, **kwargs: Any
    ) -> str | None:
        return None if value is None else to_wire(value)

    def _deserialize(
        self, value: Any, attr: str | None, data: Mapping[str, Any] | None, **kwargs: Any
    ) -> Decimal:
        try:
            amount = parse_amount(value)
        except AmountError as exc:
            raise ma.ValidationError(str(exc)) from None
        if self.positive and amount <= 0:
            raise ma.ValidationError("amount must be greater than zero")
        return amount


class Text(ma.fields.String):
    """Free text that is stored: PostgreSQL text cannot hold NUL (U+0000), so it is refused here
    (422) rather than by the insert (500)."""

    default_error_messages = {"nul": "Must not contain NUL (U+0000) characters."}

    def __init__(self, **kwargs: Any) -> None:
        metadata = {"pattern": r"^[^\u0000]*$", **kwargs.pop("metadata", {})}
        super().__init__(metadata=metadata, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise self.make_error("nul")
        return text


# PostgreSQL bigint: ids and cursors beyond it are a 422 here rather than a 500 from the query.
BIGINT_MAX = 2**63 - 1


def row_id(**kwargs: Any) -> ma.fields.Integer:
    """A positive bigint row id (a notification, webhook or audit cursor)."""
    return ma.fields.Integer(validate=ma.validate.Range(min=1, max=BIGINT_MAX), **kwargs)


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class WalletSchema(ma.Schema):
    id = ma.fields.UUID()
    balance = Amount()
    available_balance = Amount()
    on_hold = Amount(
        metadata={"description": "Reserved by active escrow holds (part of balance − available)."}
    )
    address = ma.fields.String(allow_none=True)
    is_connected = ma.fields.Boolean()
    external_balance = Amount(
        allow_none=True,
        metadata={
            "description": "On-chain token balance of the connected address (cached "
            "briefly); null when not connected or the RPC is unavailable."
        },
    )
    external_balance_available = ma.fields.Boolean()
    network = ma.fields.String()
    created_at = ma.fields.DateTime()
    last_used = ma.fields.DateTime(allow_none=True)


class TransactionSummarySchema(ma.Schema):
    id = ma.fields.UUID()
    type = ma.fields.String()
    amount = Amount(metadata={"description": "Signed from this wallet's side."})
    status = ma.fields.String()
    timestamp = ma.fields.DateTime()
    note = ma.fields.String(allow_none=True)
    failure_reason = ma.fields.String(allow_none=True)


class TransactionDetailSchema(TransactionSummarySchema):
    balance_after = Amount(allow_none=True)
    tx_hash = ma.fields.String(allow_none=True)
    created_at = ma.fields.DateTime()
    completed_at = ma.fields.DateTime(allow_none=True)
    counterparty = ma.fields.String(
        allow_none=True,
        metadata={
            "description": "The other party: a user's id, or `platform`, `issuance` or `chain`"
        },
    )


class WalletOverviewSchema(ma.Schema):
    wallet = ma.fields.Nested(WalletSchema)
    transaction_history = ma.fields.List(ma.fields.Nested(TransactionSummarySchema))


NOTE_MAX = 280


class TransferRequestSchema(StrictSchema):
    recipient_id = ma.fields.UUID(required=True)
    amount = Amount(required=True, positive=True)
    note = Text(load_default=None, allow_none=True, validate=ma.validate.Length(max=NOTE_MAX))


class ConfirmationSchema(ma.Schema):
    message = ma.fields.String(
        metadata={"description": "The text the connected wallet signs (signMessage)."}
    )
    expires_at = ma.fields.DateTime()


class SubmissionResponseSchema(ma.Schema):
    success = ma.fields.Boolean()
    transaction_id = ma.fields.UUID()
    status = ma.fields.String()
    balance_after = ma.fields.String(allow_none=True)
    failure_reason = ma.fields.String(allow_none=True)
    stage = ma.fields.String(
        metadata={"description": "`awaiting_confirmation`: sign `confirmation.message`."}
    )
    confirmation = ma.fields.Nested(
        ConfirmationSchema,
        metadata={
            "description": "A transfer or withdrawal at or above the step-up amount: POST the "
            "connected wallet's signature of `message` to "
            "/api/wallet/transactions/{id}/confirm before `expires_at`."
        },
    )


SIGNATURE_MAX = 200


class ConfirmRequestSchema(StrictSchema):
    # Checked by the service after the transaction is found (someone else's id is 404 whatever
    # the body): missing or malformed is 400 `invalid_signature`, audited like a wrong one.
    signature = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=SIGNATURE_MAX),
        metadata={
            "description": "Required: the connected wallet's ed25519 signature of the "
            "message, base58 or base64."
        },
    )


class TransactionQuerySchema(StrictSchema):
    type = ma.fields.String(validate=ma.validate.OneOf([k.value for k in Kind]))
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in Status]))
    since = ma.fields.AwareDateTime(default_timezone=UTC)
    until = ma.fields.AwareDateTime(default_timezone=UTC)
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class TransactionPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(TransactionDetailSchema))
    next_cursor = ma.fields.String(allow_none=True)


REASON_MAX = 280
MAX_REWARD_ITEMS = 1000


class ChargeRequestSchema(StrictSchema):
    user_id = ma.fields.UUID(required=True)
    amount = Amount(required=True, positive=True)
    reason = Text(required=True, validate=ma.validate.Length(min=1, max=REASON_MAX))


class RewardItemSchema(StrictSchema):
    user_id = ma.fields.UUID(required=True)
    amount = Amount(required=True, positive=True)
    reason = Text(required=True, validate=ma.validate.Length(min=1, max=REASON_MAX))


class RewardRequestSchema(StrictSchema):
    """Either one reward (`user_id`, `amount`, `reason`) or `items` (1–1,000 rewards)."""

    user_id = ma.fields.UUID()
    amount = Amount(positive=True)
    reason = Text(validate=ma.validate.Length(min=1, max=REASON_MAX))
    items = ma.fields.List(
        ma.fields.Nested(RewardItemSchema),
        validate=ma.validate.Length(min=1, max=MAX_REWARD_ITEMS),
    )

    @ma.validates_schema
    def one_or_many(self, data: dict[str, Any], **kwargs: Any) -> None:
        single = {"user_id", "amount", "reason"} & data.keys()
        if "items" in data and single:
            raise ma.ValidationError("give either items or user_id/amount/reason, not both")
        if "items" not in data and single != {"user_id", "amount", "reason"}:
            raise ma.ValidationError("user_id, amount and reason are required without items")


class RewardResponseSchema(SubmissionResponseSchema):
    count = ma.fields.Integer()
    transaction_ids = ma.fields.List(ma.fields.UUID())


class RefundRequestSchema(StrictSchema):
    transaction_id = ma.fields.UUID(required=True)
    amount = Amount(positive=True, load_default=None)


class DepositRequestSchema(StrictSchema):
    amount = Amount(required=True, positive=True)


class DepositResponseSchema(ma.Schema):
    success = ma.fields.Boolean()
    transaction_id = ma.fields.UUID()
    status = ma.fields.String()
    amount = Amount()
    payment_url = ma.fields.String()
    reference = ma.fields.String()
    recipient = ma.fields.String()
    mint = ma.fields.String()
    expires_at = ma.fields.DateTime()


class WithdrawalRequestSchema(StrictSchema):
    amount = Amount(required=True, positive=True)


class StatementQuerySchema(StrictSchema):
    since = ma.fields.AwareDateTime(
        default_timezone=UTC,
        data_key="from",
        metadata={"description": "From this moment (ISO 8601; default: the beginning)."},
    )
    until = ma.fields.AwareDateTime(
        default_timezone=UTC,
        data_key="to",
        metadata={"description": "Until this moment, excluded (ISO 8601; default: now)."},
    )

    @ma.validates_schema
    def ordered(self, data: dict[str, Any], **kwargs: Any) -> None:
        if "since" in data and "until" in data and data["since"] >= data["until"]:
            raise ma.ValidationError("from must be before to", "to")


class KindTotalsSchema(ma.Schema):
    kind = ma.fields.String()
    earned = Amount()
    spent = Amount()


class MonthTotalsSchema(ma.Schema):
    month = ma.fields.String(metadata={"description": "YYYY-MM (UTC)", "example": "2026-11"})
    earned = Amount(metadata={"description": "Credited to this wallet in the month"})
    spent = Amount(metadata={"description": "Debited from this wallet in the month"})
    by_kind = ma.fields.List(ma.fields.Nested(KindTotalsSchema))


class AnalyticsSchema(ma.Schema):
    months = ma.fields.List(
        ma.fields.Nested(MonthTotalsSchema),
        metadata={"description": "The last 12 months, oldest first, every month listed"},
    )
