"""The service API: fees, rewards and refunds, requested by other platform services."""

from __future__ import annotations

from typing import Any

from flask import current_app
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import wiring
from app.api.http import IDEMPOTENCY_KEY_PARAMETER, idempotency_for, reply
from app.api.schemas import (
    ChargeRequestSchema,
    RefundRequestSchema,
    RewardRequestSchema,
    RewardResponseSchema,
    SubmissionResponseSchema,
)
from app.services import transfers

bp = Blueprint(
    "internal",
    __name__,
    url_prefix="/api/internal",
    description="Service-to-service money movements (role `service`)",
)
DOC = {
    "security": [{"bearerAuth": []}],
    "parameters": [IDEMPOTENCY_KEY_PARAMETER],
}


@bp.route("/charges", methods=["POST"])
@requires("service")
@bp.arguments(ChargeRequestSchema())
@bp.response(202, SubmissionResponseSchema)
@bp.doc(**DOC)
def charge(args: dict[str, Any]) -> Any:
    """Charge a service fee: user → platform wallet."""
    return reply(
        transfers.charge(
            wiring(),
            current_app.extensions["system_wallets"],
            current_principal().user_id,
            idempotency_for(args),
            user_id=args["user_id"],
            amount=args["amount"],
            reason=args["reason"],
            provisioner=current_app.extensions["provisioner"],
        )
    )


@bp.route("/rewards", methods=["POST"])
@requires("service")
@bp.arguments(RewardRequestSchema())
@bp.response(202, RewardResponseSchema)
@bp.doc(**DOC)
def reward(args: dict[str, Any]) -> Any:
    """Pay one reward or up to 1,000 (`items`): platform wallet → users, all or none."""
    raw_items = args.get("items") or [args]
    items = [transfers.RewardItem(i["user_id"], i["amount"], i["reason"]) for i in raw_items]
    return reply(
        transfers.reward(
            wiring(),
            current_app.extensions["system_wallets"],
            current_principal().user_id,
            idempotency_for(args),
            items,
            provisioner=current_app.extensions["provisioner"],
        )
    )


@bp.route("/refunds", methods=["POST"])
@requires("service")
@bp.arguments(RefundRequestSchema())
@bp.response(202, SubmissionResponseSchema)
@bp.doc(**DOC)
def refund(args: dict[str, Any]) -> Any:
    """Refund (part of) a completed transfer or fee; never beyond the original in total."""
    return reply(
        transfers.refund(
            wiring(),
            current_principal().user_id,
            idempotency_for(args),
            transaction_id=args["transaction_id"],
            amount=args.get("amount"),
        )
    )
