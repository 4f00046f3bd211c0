"""Schemas of the admin blueprint."""

from __future__ import annotations

import marshmallow as ma

from app.api.schemas import StrictSchema
from app.services.webhooks import STATUSES


class WebhookQuerySchema(StrictSchema):
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=200))
    cursor = ma.fields.Integer(validate=ma.validate.Range(min=1))


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
