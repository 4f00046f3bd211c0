"""Operator views (role `admin`): webhook delivery status."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.api.admin_schemas import WebhookPageSchema, WebhookQuerySchema
from app.api.auth import requires
from app.api.context import db
from app.services import webhooks

bp = Blueprint(
    "admin", __name__, url_prefix="/api/admin", description="Operator views (role `admin`)"
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@bp.route("/webhooks", methods=["GET"])
@requires("admin")
@bp.arguments(WebhookQuerySchema, location="query")
@bp.response(200, WebhookPageSchema)
@bp.doc(security=SECURITY)
def list_webhooks(args: dict[str, Any]) -> dict[str, Any]:
    """Webhook deliveries, newest first: status, attempts, next attempt, last error."""
    with db().transaction() as session:
        items, next_cursor = webhooks.list_deliveries(
            session, status=args.get("status"), limit=args["limit"], cursor=args.get("cursor")
        )
    return {"items": items, "next_cursor": next_cursor}
