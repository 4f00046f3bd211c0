"""The caller's notifications: list, mark read, and a live Server-Sent Events stream."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Response, request
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import db, wiring
from app.api.schemas import BIGINT_MAX, StrictSchema, row_id
from app.services import live, notifications

bp = Blueprint(
    "notifications",
    __name__,
    url_prefix="/api/notifications",
    description="What happened to your money",
)
ROLES = ("user", "admin")
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


class NotificationSchema(ma.Schema):
    id = ma.fields.Integer()
    kind = ma.fields.String()
    transaction_id = ma.fields.UUID(allow_none=True)
    amount = ma.fields.String(allow_none=True)
    data = ma.fields.Dict()
    created_at = ma.fields.String()
    read = ma.fields.Boolean()


class NotificationQuerySchema(StrictSchema):
    unread = ma.fields.Boolean()
    limit = ma.fields.Integer(load_default=20, validate=ma.validate.Range(min=1, max=100))
    cursor = row_id()


class NotificationPageSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(NotificationSchema))
    next_cursor = ma.fields.Integer(allow_none=True)


class ReadAllSchema(ma.Schema):
    success = ma.fields.Boolean()
    updated = ma.fields.Integer()


@bp.route("", methods=["GET"])
@requires(*ROLES)
@bp.arguments(NotificationQuerySchema(), location="query")
@bp.response(200, NotificationPageSchema)
@bp.doc(security=SECURITY)
def list_notifications(args: dict[str, Any]) -> dict[str, Any]:
    """Your notifications, newest first; `unread=true` for unread only; `cursor` pages on."""
    with db().transaction() as session:
        items, next_cursor = notifications.list_for(
            session,
            current_principal().user_id,
            unread=args.get("unread"),
            limit=args["limit"],
            before=args.get("cursor"),
        )
    return {"items": items, "next_cursor": next_cursor}


@bp.route(f"/<int(min=1, max={BIGINT_MAX}):notification_id>/read", methods=["POST"])
@requires(*ROLES)
@bp.response(200, NotificationSchema)
@bp.doc(security=SECURITY)
def read(notification_id: int) -> dict[str, Any]:
    """Mark one of your notifications read (anyone else's is 404)."""
    with db().transaction() as session:
        return notifications.mark_read(session, current_principal().user_id, notification_id)


@bp.route("/read-all", methods=["POST"])
@requires(*ROLES)
@bp.response(200, ReadAllSchema)
@bp.doc(security=SECURITY)
def read_all() -> dict[str, Any]:
    """Mark all your notifications read."""
    with db().transaction() as session:
        updated = notifications.mark_all_read(session, current_principal().user_id)
    return {"success": True, "updated": updated}


@bp.route("/stream", methods=["GET"])
@requires(*ROLES)
@bp.doc(
    security=SECURITY,
    responses={
        "200": {"description": "text/event-stream"},
        "429": {"description": "too_many_streams: close one; Retry-After says when one frees"},
    },
)
def stream() -> Response:
    """Server-Sent Events: each event's data is a notification; send `Last-Event-ID` (header, or
    `last_event_id` query for EventSource polyfills) to resume without gaps. A stream ends after a
    few minutes (EventSource reconnects by itself); a user may hold only a few at once."""
    opened = live.open_stream(  # too many streams: 429 with Retry-After (problems.wallet_error)
        wiring(),
        current_principal().user_id,
        request.headers.get("Last-Event-ID") or request.args.get("last_event_id"),
    )
    response = Response(
        opened.events(),
        mimetype="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
    response.call_on_close(opened.close)
    return response
