"""The caller's own wallet: overview, transfers, transaction history."""

from __future__ import annotations

import dataclasses
import uuid
from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import db, wiring
from app.api.http import idempotency_for, prefer_wait, reply
from app.api.schemas import (
    SubmissionResponseSchema,
    TransactionDetailSchema,
    TransactionPageSchema,
    TransactionQuerySchema,
    TransferRequestSchema,
    WalletOverviewSchema,
)
from app.chain.rpc import ChainError
from app.services import deposits, external_balance, history, transfers, wallets

bp = Blueprint("wallet", __name__, url_prefix="/api/wallet", description="The caller's wallet")

WALLET_ROLES = ("user", "admin")
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _caller() -> transfers.Caller:
    principal = current_principal()
    return transfers.Caller(principal.user_id, principal.wallet_id)


@bp.route("")
class WalletResource(MethodView):
    @requires(*WALLET_ROLES)
    @bp.response(200, WalletOverviewSchema)
    @bp.doc(security=SECURITY)
    def get(self) -> dict[str, Any]:
        """The wallet and its latest 20 transactions (amounts signed from this wallet's side)."""
        principal = current_principal()
        with db().statement() as conn:
            wallet, items = wallets.overview(conn, principal.wallet_id)
        external, available = (
            external_balance.lookup(wiring(), wallet.address) if wallet.address else (None, False)
        )
        view = {
            **dataclasses.asdict(wallet),
            "is_connected": wallet.is_connected,
            "external_balance": external,
            "external_balance_available": available,
        }
        return {"wallet": view, "transaction_history": items}


@bp.route("/transfer", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.arguments(TransferRequestSchema)
@bp.response(202, SubmissionResponseSchema)
@bp.alt_response(200, schema=SubmissionResponseSchema, description="Settled within Prefer: wait")
@bp.doc(
    security=SECURITY,
    parameters=[
        {"in": "header", "name": "Idempotency-Key", "required": True, "schema": {"type": "string"}},
        {"in": "header", "name": "Prefer", "schema": {"type": "string", "example": "wait=5"}},
    ],
)
def transfer(args: dict[str, Any]) -> Any:
    """Send tokens to another user. Answers 202 PENDING, or 200 with the final state when it
    settles within `Prefer: wait=N` (N ≤ 10)."""
    wait = prefer_wait()
    result = transfers.transfer(
        wiring(),
        _caller(),
        idempotency_for(args),
        recipient_id=args["recipient_id"],
        amount=args["amount"],
        note=args["note"],
        wait_seconds=wait,
    )
    return reply(result, wait)


@bp.route("/transactions", methods=["GET"])
@requires(*WALLET_ROLES)
@bp.arguments(TransactionQuerySchema, location="query")
@bp.response(200, TransactionPageSchema)
@bp.doc(security=SECURITY)
def list_transactions(args: dict[str, Any]) -> dict[str, Any]:
    """This wallet's transactions, newest first, filtered, with a stable cursor."""
    filters = history.Filters(
        args.get("type"), args.get("status"), args.get("since"), args.get("until")
    )
    with db().statement() as conn:
        items, next_cursor = history.list_transactions(
            conn, current_principal().wallet_id, filters, args["limit"], args.get("cursor")
        )
    return {"items": items, "next_cursor": next_cursor}


@bp.route("/transactions/<uuid:transaction_id>", methods=["GET"])
@requires(*WALLET_ROLES)
@bp.response(200, TransactionDetailSchema)
@bp.doc(security=SECURITY)
def get_transaction(transaction_id: uuid.UUID) -> history.TransactionView:
    """One of this wallet's transactions; anyone else's is 404. A deposit still awaiting payment
    is checked against the chain on the spot."""
    wallet_id = current_principal().wallet_id
    with db().statement() as conn:
        found = history.get_transaction(conn, wallet_id, transaction_id)
    if found.stage != deposits.AWAITING or found.direction != "credit":
        return found
    try:
        deposits.check(wiring(), current_app.extensions["system_wallets"], transaction_id)
    except ChainError:
        return found  # the beat watcher will try again; show what we know
    with db().statement() as conn:
        return history.get_transaction(conn, wallet_id, transaction_id)
