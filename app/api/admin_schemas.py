"""Schemas of the admin blueprint."""

from __future__ import annotations

from datetime import UTC

import marshmallow as ma

from app.api.schemas import Amount, StrictSchema, Text, row_id
from app.domain.transactions import Kind, Status
from app.services.webhooks import STATUSES


class WebhookQuerySchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    cursor = row_id()


class WebhookDeliverySchema(ma.Schema):
    notification_id = ma.fields.Integer()
    user_id = ma.fields.UUID()
    kind = ma.fields.String()
    status = ma.fields.String()
    attempts = ma.fields.Integer()
    next_attempt_at = ma.fields.DateTime(allow_none=True)
    last_error = ma.fields.String(allow_none=True)
    delivered_at = ma.fields.DateTime(allow_none=True)
    created_at = ma.fields.DateTime()


class WebhookPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(WebhookDeliverySchema))
    next_cursor = ma.fields.Integer(allow_none=True)


class AdminTransactionQuerySchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf([s.value for s in Status]))
    kind = ma.fields.String(validate=ma.validate.OneOf([k.value for k in Kind]))
    user_id = ma.fields.UUID(metadata={"description": "Either side of the transaction."})
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    cursor = ma.fields.String(validate=ma.validate.Length(max=200))


class AdminTransactionSchema(ma.Schema):
    id = ma.fields.UUID()
    kind = ma.fields.String()
    status = ma.fields.String()
    stage = ma.fields.String(allow_none=True)
    amount = Amount()
    debit_user_id = ma.fields.UUID()
    credit_user_id = ma.fields.UUID()
    reason = ma.fields.String(
        allow_none=True,
        metadata={"description": "The fraud rule while held; the failure reason once failed."},
    )
    created_at = ma.fields.DateTime()
    updated_at = ma.fields.DateTime()


class AdminTransactionPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AdminTransactionSchema))
    next_cursor = ma.fields.String(allow_none=True)


class AuditQuerySchema(StrictSchema):
    actor = ma.fields.UUID()
    action = Text(validate=ma.validate.Length(max=100))
    target = Text(validate=ma.validate.Length(max=200))
    since = ma.fields.AwareDateTime(default_timezone=UTC)
    until = ma.fields.AwareDateTime(default_timezone=UTC)
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = row_id()


class AuditEntrySchema(ma.Schema):
    id = ma.fields.Integer()
    occurred_at = ma.fields.DateTime()
    actor_id = ma.fields.UUID(allow_none=True)
    action = ma.fields.String()
    target = ma.fields.String(allow_none=True)
    request_id = ma.fields.String(allow_none=True)
    ip = ma.fields.String(allow_none=True)
    details = ma.fields.Dict()


class AuditPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(AuditEntrySchema))
    next_cursor = ma.fields.Integer(allow_none=True)
