"""The service API: fees, rewards, refunds and escrow holds, requested by other platform
services."""

from __future__ import annotations

import uuid
from typing import Any

from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import wiring
from app.api.hold_schemas import (
    CaptureRequestSchema,
    CaptureResponseSchema,
    HoldRequestSchema,
    HoldSchema,
    VoidResponseSchema,
)
from app.api.http import IDEMPOTENCY_KEY_PARAMETER, idempotency_for, reply
from app.api.schemas import (
    ChargeRequestSchema,
    RefundRequestSchema,
    RewardRequestSchema,
    RewardResponseSchema,
    SubmissionResponseSchema,
)
from app.services import escrow, escrow_decisions, transfers

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
            wiring().system,
            current_principal().user_id,
            idempotency_for(args),
            user_id=args["user_id"],
            amount=args["amount"],
            reason=args["reason"],
            provisioner=wiring().provisioner,
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
            wiring().system,
            current_principal().user_id,
            idempotency_for(args),
            items,
            provisioner=wiring().provisioner,
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


@bp.route("/holds", methods=["POST"])
@requires("service")
@bp.arguments(HoldRequestSchema())
@bp.response(201, HoldSchema)
@bp.doc(**DOC)
def place_hold(args: dict[str, Any]) -> Any:
    """Place an escrow hold: the amount leaves the user's available balance at once (422
    `insufficient_balance` otherwise) until it is captured, voided or expires. A user the wallet
    has never seen gets their wallet (and has nothing to hold)."""
    return reply(
        escrow.place(
            wiring(),
            wiring().provisioner,
            current_principal().user_id,
            idempotency_for(args),
            escrow.HoldRequest(
                args["user_id"], args["amount"], args["reason"], args["expires_in_seconds"]
            ),
        )
    )


@bp.route("/holds/<uuid:hold_id>/capture", methods=["POST"])
@requires("service")
@bp.arguments(CaptureRequestSchema())
@bp.response(202, CaptureResponseSchema)
@bp.doc(security=DOC["security"])
def capture_hold(args: dict[str, Any], hold_id: uuid.UUID) -> Any:
    """Capture (up to) the held amount: a PENDING transaction pays the platform wallet, or the
    recipient user, and settles like any other; the rest of the hold is released. Exactly one
    of a capture, a void and the expiry wins (409 `hold_not_active` for the others); repeating
    the capture answers the capture that happened."""
    return reply(
        escrow_decisions.capture(
            wiring(),
            wiring().system,
            wiring().provisioner,
            current_principal().user_id,
            hold_id,
            amount=args["amount"],
            recipient_id=args["recipient_id"],
        )
    )


@bp.route("/holds/<uuid:hold_id>/void", methods=["POST"])
@requires("service")
@bp.response(200, VoidResponseSchema)
@bp.doc(security=DOC["security"])
def void_hold(hold_id: uuid.UUID) -> Any:
    """Release the whole hold; repeating it answers the release that happened."""
    return reply(escrow_decisions.void(wiring(), current_principal().user_id, hold_id))
