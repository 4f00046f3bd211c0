"""The caller's own wallet: overview, transfers, transaction history."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import orjson
from flask import Response, stream_with_context
from flask.views import MethodView
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import db, wiring
from app.api.hold_schemas import UserHoldsSchema
from app.api.http import IDEMPOTENCY_KEY_PARAMETER, idempotency_for, prefer_wait, reply
from app.api.schemas import (
    AnalyticsSchema,
    ConfirmRequestSchema,
    StatementQuerySchema,
    SubmissionResponseSchema,
    TransactionDetailSchema,
    TransactionPageSchema,
    TransactionQuerySchema,
    TransferRequestSchema,
    WalletOverviewSchema,
)
from app.bootstrap import Wiring
from app.domain.money import to_wire
from app.services import (
    analytics,
    deposits,
    escrow,
    external_balance,
    history,
    movement,
    statement,
    step_up,
    transfers,
    wallets,
)
from app.services.idempotency import Reply
from app.services.transfers import Idempotency

bp = Blueprint("wallet", __name__, url_prefix="/api/wallet", description="The caller's wallet")

WALLET_ROLES = ("user", "admin")
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _caller() -> movement.Caller:
    principal = current_principal()
    return movement.Caller(principal.user_id, principal.wallet_id)


@bp.route("")
class WalletResource(MethodView):
    @requires(*WALLET_ROLES)
    @bp.response(200, WalletOverviewSchema)
    @bp.doc(security=SECURITY)
    def get(self) -> Response:
        """The wallet and its latest 20 transactions (amounts signed from this wallet's side)."""
        return overview_response(wiring(), current_principal().wallet_id)


def overview_response(adapters: Wiring, wallet_id: uuid.UUID) -> Response:
    """GET /api/wallet's answer (also sent by the express lane, app/api/express.py)."""
    wallet, history_json = wallets.overview(adapters.db, wallet_id)
    external, available = (
        external_balance.lookup(adapters, wallet.address) if wallet.address else (None, False)
    )
    body = overview_body(wallet, history_json, external, available)
    return Response(orjson.dumps(body), mimetype="application/json")


def overview_body(
    wallet: wallets.WalletView,
    history_json: str,
    external: Decimal | None,
    external_available: bool,
) -> dict[str, Any]:
    """Exactly what `WalletOverviewSchema` dumps (the documented contract), built directly: the
    most requested page should not spend a third of its time in marshmallow. The history comes
    from the database already in its wire form (`wallets.overview`). An integration test keeps
    this identical to the schema's dump of the same transactions."""
    return {
        "wallet": {
            "id": str(wallet.id),
            "balance": to_wire(wallet.balance),
            "available_balance": to_wire(wallet.available_balance),
            "on_hold": to_wire(wallet.on_hold),
            "address": wallet.address,
            "is_connected": wallet.is_connected,
            "external_balance": None if external is None else to_wire(external),
            "external_balance_available": external_available,
            "network": wallet.network,
            "created_at": wallet.created_at.isoformat(),
            "last_used": wallet.last_used.isoformat() if wallet.last_used else None,
        },
        "transaction_history": orjson.Fragment(history_json),
    }


@bp.route("/transfer", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.arguments(TransferRequestSchema())
@bp.response(202, SubmissionResponseSchema)
@bp.alt_response(200, schema=SubmissionResponseSchema, description="Settled within Prefer: wait")
@bp.doc(
    security=SECURITY,
    parameters=[
        IDEMPOTENCY_KEY_PARAMETER,
        {"in": "header", "name": "Prefer", "schema": {"type": "string", "example": "wait=5"}},
    ],
)
def transfer(args: dict[str, Any]) -> Any:
    """Send tokens to another user. Answers 202 PENDING, or 200 with the final state when it
    settles within `Prefer: wait=N` (N ≤ 10)."""
    wait = prefer_wait()
    return reply(send_transfer(wiring(), _caller(), idempotency_for(args), args, wait), wait)


def send_transfer(
    adapters: Wiring,
    caller: movement.Caller,
    idem: Idempotency,
    args: dict[str, Any],
    wait_seconds: int = 0,
) -> Reply:
    """A transfer whose request `TransferRequestSchema` loaded into `args` (also sent by the
    express lane, app/api/express.py)."""
    return transfers.transfer(
        adapters,
        caller,
        idem,
        recipient_id=args["recipient_id"],
        amount=args["amount"],
        note=args["note"],
        wait_seconds=wait_seconds,
    )


@bp.route("/transactions", methods=["GET"])
@requires(*WALLET_ROLES)
@bp.arguments(TransactionQuerySchema(), location="query")
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
    return deposits.view_own(
        wiring(),
        wiring().system,
        current_principal().wallet_id,
        transaction_id,
    )


@bp.route("/holds", methods=["GET"])
@requires(*WALLET_ROLES)
@bp.response(200, UserHoldsSchema)
@bp.doc(security=SECURITY)
def list_holds() -> dict[str, Any]:
    """The escrow holds active on this wallet (newest first, at most 100): money a deal has
    reserved, part of the `on_hold` figure of GET /api/wallet."""
    with db().transaction() as session:
        return {"items": escrow.active_of(session, current_principal().wallet_id)}


@bp.route("/transactions/<uuid:transaction_id>/confirm", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.arguments(ConfirmRequestSchema())
@bp.response(202, SubmissionResponseSchema)
@bp.doc(security=SECURITY)
def confirm_transaction(args: dict[str, Any], transaction_id: uuid.UUID) -> Response:
    """Confirm a transfer or withdrawal awaiting step-up confirmation with the connected
    wallet's signature of its message; it then settles. A wrong signature is 400 (audited);
    after the window it is FAILED `unconfirmed` (409 `confirmation_expired` until then)."""
    principal = current_principal()
    return reply(
        step_up.confirm(
            wiring(), principal.user_id, principal.wallet_id, transaction_id, args["signature"]
        )
    )


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@bp.route("/statement", methods=["GET"])
@requires(*WALLET_ROLES)
@bp.arguments(StatementQuerySchema(), location="query")
@bp.doc(
    security=SECURITY,
    responses={
        "200": {
            "description": "CSV (RFC 4180, header row): date, kind, counterparty, note, amount "
            "(signed from this wallet's side), balance_after (blank until settled), status, "
            "tx_hash; oldest first.",
            "content": {"text/csv": {"schema": {"type": "string"}}},
        }
    },
)
def export_statement(args: dict[str, Any]) -> Response:
    """This wallet's transactions between `from` and `to` as a CSV statement, streamed."""
    since = args.get("since", EPOCH)
    until = args.get("until") or datetime.now(UTC)
    lines = statement.csv_lines(db(), current_principal().wallet_id, since, until)
    return Response(
        stream_with_context(lines),
        mimetype="text/csv",
        headers={
            "Content-Disposition": 'attachment; filename="statement.csv"',
            "Cache-Control": "no-store",
        },
    )


@bp.route("/analytics", methods=["GET"])
@requires(*WALLET_ROLES)
@bp.response(200, AnalyticsSchema)
@bp.doc(security=SECURITY)
def get_analytics() -> dict[str, Any]:
    """Earned and spent: this wallet's completed transactions summed per month (UTC) and kind,
    for the last 12 months."""
    with db().statement() as conn:
        months = analytics.monthly_totals(conn, current_principal().wallet_id)
    return {"months": months}
