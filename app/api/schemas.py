"""Marshmallow schemas shared by the blueprints; the OpenAPI document is generated from them."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import marshmallow as ma

from app.domain.money import AmountError, parse_amount, to_wire


class Amount(ma.fields.Field):  # type: ignore[type-arg]
    """A decimal amount: accepts a decimal string or a JSON number, answers a string with six
    places ("10.500000"). Floats never touch the value: numbers are parsed from their text."""

    def __init__(self, *, positive: bool = False, **kwargs: Any) -> None:
        metadata = {
            "type": "string",
            "pattern": r"^-?\d{1,12}(\.\d{1,6})?$",
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


class StrictSchema(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class WalletSchema(ma.Schema):
    id = ma.fields.UUID()
    balance = Amount()
    available_balance = Amount()
    address = ma.fields.String(allow_none=True)
    is_connected = ma.fields.Boolean()
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


class WalletOverviewSchema(ma.Schema):
    wallet = ma.fields.Nested(WalletSchema)
    transaction_history = ma.fields.List(ma.fields.Nested(TransactionSummarySchema))
