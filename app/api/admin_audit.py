"""GET /api/admin/audit: the append-only audit log, for admins."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from app.api.auth import requires
from app.api.context import db
from app.api.schemas import StrictSchema
from app.services import audit

bp = Blueprint(
    "admin_audit", __name__, url_prefix="/api/admin", description="Operator views (role `admin`)"
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


class AuditQuerySchema(StrictSchema):
    actor = ma.fields.UUID()
    action = ma.fields.String(validate=ma.validate.Length(max=100))
    target = ma.fields.String(validate=ma.validate.Length(max=200))
    since = ma.fields.AwareDateTime(default_timezone=UTC)
    until = ma.fields.AwareDateTime(default_timezone=UTC)
    limit = ma.fields.Integer(load_default=50, validate=ma.validate.Range(min=1, max=500))
    cursor = ma.fields.Integer(validate=ma.validate.Range(min=1))


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


@bp.route("/audit", methods=["GET"])
@requires("admin")
@bp.arguments(AuditQuerySchema, location="query")
@bp.response(200, AuditPageSchema)
@bp.doc(security=SECURITY)
def list_audit(args: dict[str, Any]) -> dict[str, Any]:
    """Audit entries, newest first; filter by actor, action, target and time."""
    with db().transaction() as session:
        items, next_cursor = audit.search(
            session,
            actor=args.get("actor"),
            action=args.get("action"),
            target=args.get("target"),
            since=args.get("since"),
            until=args.get("until"),
            limit=args["limit"],
            before=args.get("cursor"),
        )
    return {"items": items, "next_cursor": next_cursor}
