"""Connecting an external Solana address to the caller's wallet (Sign-In With Solana)."""

from __future__ import annotations

from typing import Any

from flask import request
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.connection_schemas import (
    ChallengeRequestSchema,
    ChallengeResponseSchema,
    ConnectRequestSchema,
    ConnectResponseSchema,
    DisconnectRequestSchema,
    DisconnectResponseSchema,
)
from app.api.context import db, wiring
from app.api.wallet import SECURITY, WALLET_ROLES
from app.chain import siws
from app.chain.siws import Challenge
from app.services import connections

bp = Blueprint(
    "connections",
    __name__,
    url_prefix="/api/wallet",
    description="Connect an external Solana address by signing a challenge",
)


@bp.route("/challenge", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.arguments(ChallengeRequestSchema())
@bp.response(201, ChallengeResponseSchema)
@bp.doc(security=SECURITY)
def challenge(args: dict[str, Any]) -> Challenge:
    """A Sign-In-With-Solana message for this address, single use, valid five minutes."""
    config = wiring().config
    return connections.issue_challenge(
        db(),
        config,
        current_principal().user_id,
        args["wallet_address"],
        config.domain or siws.domain_of(request.host),
    )


@bp.route("/connect", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.arguments(ConnectRequestSchema())
@bp.response(200, ConnectResponseSchema)
@bp.doc(security=SECURITY)
def connect(args: dict[str, Any]) -> dict[str, Any]:
    """Connect the address whose key signed this caller's open challenge."""
    principal = current_principal()
    connection = connections.connect(
        db(),
        principal.user_id,
        principal.wallet_id,
        args["wallet_address"],
        args["signature"],
        wiring().keyring,
        signed_message=args.get("signed_message"),
    )
    return {
        "success": True,
        "message": "Wallet connected",
        "wallet_id": connection.wallet_id,
        "address": connection.address,
    }


@bp.route("/disconnect", methods=["POST"])
@requires(*WALLET_ROLES)
@bp.arguments(DisconnectRequestSchema())
@bp.response(200, DisconnectResponseSchema)
@bp.doc(security=SECURITY)
def disconnect(args: dict[str, Any]) -> dict[str, Any]:
    """Disconnect the address from the caller's own wallet (`wallet_id`)."""
    principal = current_principal()
    removed = connections.disconnect(
        db(), principal.user_id, principal.wallet_id, args["wallet_id"]
    )
    message = "Wallet disconnected" if removed else "No wallet address was connected"
    return {"success": True, "message": message}
