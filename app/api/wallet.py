"""The caller's own wallet."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import db
from app.api.schemas import WalletOverviewSchema
from app.services import history, wallets

bp = Blueprint("wallet", __name__, url_prefix="/api/wallet", description="The caller's wallet")

WALLET_ROLES = ("user", "admin")


@bp.route("")
class WalletResource(MethodView):
    @requires(*WALLET_ROLES)
    @bp.response(200, WalletOverviewSchema)
    @bp.doc(security=[{"bearerAuth": []}])
    def get(self) -> dict[str, Any]:
        """The wallet and its latest 20 transactions (amounts signed from this wallet's side)."""
        principal = current_principal()
        with db().transaction() as session:
            wallet = wallets.load_wallet(session, principal.wallet_id)
            items, _ = history.list_transactions(session, principal.wallet_id, limit=20)
        return {"wallet": wallet, "transaction_history": items}
