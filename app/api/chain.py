"""Deposits (Solana Pay) and withdrawals to the connected address."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import wiring
from app.api.http import IDEMPOTENCY_KEY_PARAMETER, idempotency_for, reply
from app.api.schemas import (
    DepositRequestSchema,
    DepositResponseSchema,
    SubmissionResponseSchema,
    WithdrawalRequestSchema,
)
from app.services import deposits, withdrawals
from app.services.transfers import Caller

bp = Blueprint("chain", __name__, url_prefix="/api/wallet", description="Deposits and withdrawals")
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _caller() -> Caller:
    principal = current_principal()
    return Caller(principal.user_id, principal.wallet_id)


@bp.route("/deposits", methods=["POST"])
@requires("user", "admin")
@bp.arguments(DepositRequestSchema())
@bp.response(201, DepositResponseSchema)
@bp.doc(security=SECURITY)
def create_deposit(args: dict[str, Any]) -> Any:
    """Request a deposit: pay the returned Solana Pay `payment_url` from any wallet; the deposit
    is credited once the payment is finalized, and expires unpaid after `expires_at`. A user may
    have DEPOSIT_MAX_OPEN_PER_USER awaiting payment at once (409 `too_many_open_deposits`)."""
    request = deposits.create(wiring(), wiring().system, _caller(), args["amount"])
    return {"success": True, "status": "pending", **request.__dict__}


@bp.route("/withdrawals", methods=["POST"])
@requires("user", "admin")
@bp.arguments(WithdrawalRequestSchema())
@bp.response(202, SubmissionResponseSchema)
@bp.doc(
    security=SECURITY,
    parameters=[
        IDEMPOTENCY_KEY_PARAMETER,
    ],
)
def create_withdrawal(args: dict[str, Any]) -> Any:
    """Withdraw to the connected Solana address. 422 problems: `wallet_not_connected`,
    `amount_below_minimum` (`minimum`), `address_cooldown` after connecting a new address
    (`retry_after` seconds, `opens_at`; also the Retry-After header), and
    `destination_account_missing` when the address has no token account of the mint."""
    return reply(
        withdrawals.request(
            wiring(),
            wiring().system,
            _caller(),
            idempotency_for(args),
            args["amount"],
        )
    )
