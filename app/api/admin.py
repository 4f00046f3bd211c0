"""Operator views (role `admin`): webhook delivery status, transactions held for review."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from app.api.admin_schemas import (
    AdminTransactionPageSchema,
    AdminTransactionQuerySchema,
    AdminTransactionSchema,
    AuditPageSchema,
    AuditQuerySchema,
    WebhookPageSchema,
    WebhookQuerySchema,
)
from app.api.auth import current_principal, requires
from app.api.context import db, wiring
from app.services import audit, fraud_review, history, webhooks

bp = Blueprint(
    "admin", __name__, url_prefix="/api/admin", description="Operator views (role `admin`)"
)
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


@bp.route("/webhooks", methods=["GET"])
@requires("admin")
@bp.arguments(WebhookQuerySchema(), location="query")
@bp.response(200, WebhookPageSchema)
@bp.doc(security=SECURITY)
def list_webhooks(args: dict[str, Any]) -> dict[str, Any]:
    """Webhook deliveries, newest first: status, attempts, next attempt, last error."""
    with db().transaction() as session:
        items, next_cursor = webhooks.list_deliveries(
            session, status=args.get("status"), limit=args["limit"], cursor=args.get("cursor")
        )
    return {"items": items, "next_cursor": next_cursor}


@bp.route("/transactions", methods=["GET"])
@requires("admin")
@bp.arguments(AdminTransactionQuerySchema(), location="query")
@bp.response(200, AdminTransactionPageSchema)
@bp.doc(security=SECURITY)
def list_transactions(args: dict[str, Any]) -> dict[str, Any]:
    """All wallets' transactions, newest first; `status=held` is the fraud review queue."""
    filters = history.AdminFilters(args.get("status"), args.get("kind"), args.get("user_id"))
    with db().transaction() as session:
        items, next_cursor = history.all_transactions(
            session, filters, limit=args["limit"], cursor=args.get("cursor")
        )
    return {"items": items, "next_cursor": next_cursor}


@bp.route("/transactions/<uuid:transaction_id>/release", methods=["POST"])
@requires("admin")
@bp.response(200, AdminTransactionSchema)
@bp.doc(security=SECURITY)
def release_transaction(transaction_id: uuid.UUID) -> dict[str, Any]:
    """Settle a held transaction now. 409 `transaction_not_held` when it is not held.

    Four eyes: 403 `own_transaction` when the caller sent or receives it."""
    return fraud_review.release(wiring(), transaction_id, current_principal().user_id)


@bp.route("/transactions/<uuid:transaction_id>/reject", methods=["POST"])
@requires("admin")
@bp.response(200, AdminTransactionSchema)
@bp.doc(security=SECURITY)
def reject_transaction(transaction_id: uuid.UUID) -> dict[str, Any]:
    """Fail a held transaction (`rejected`) and free its reservation.

    Four eyes: 403 `own_transaction` when the caller sent or receives it."""
    return fraud_review.reject(wiring(), transaction_id, current_principal().user_id)


@bp.route("/audit", methods=["GET"])
@requires("admin")
@bp.arguments(AuditQuerySchema(), location="query")
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
