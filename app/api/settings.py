"""The caller's alert settings: the low-balance threshold."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import marshmallow as ma
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import db, wiring
from app.api.schemas import Amount, StrictSchema
from app.services import low_balance

bp = Blueprint(
    "settings", __name__, url_prefix="/api/wallet", description="The caller's alert settings"
)

SETTINGS_ROLES = ("user", "admin")
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _not_negative(value: Decimal) -> None:
    if value < 0:
        raise ma.ValidationError("must be zero or more")


class SettingsRequestSchema(StrictSchema):
    low_balance_threshold = Amount(
        required=True,
        allow_none=True,
        validate=_not_negative,
        metadata={"description": "Alert below this balance; null for the platform default."},
    )


class SettingsSchema(ma.Schema):
    low_balance_threshold = Amount(allow_none=True)
    effective_low_balance_threshold = Amount()


@bp.route("/settings", methods=["GET"])
@requires(*SETTINGS_ROLES)
@bp.response(200, SettingsSchema)
@bp.doc(security=SECURITY)
def get_settings() -> dict[str, Any]:
    """The caller's low-balance threshold and the one in effect."""
    with db().transaction() as session:
        found = low_balance.settings_of(session, wiring().config, current_principal().user_id)
    return dataclasses.asdict(found)


@bp.route("/settings", methods=["PUT"])
@requires(*SETTINGS_ROLES)
@bp.arguments(SettingsRequestSchema())
@bp.response(200, SettingsSchema)
@bp.doc(security=SECURITY)
def put_settings(args: dict[str, Any]) -> dict[str, Any]:
    """Set the low-balance threshold (≥ 0), or null for the platform default. One alert is sent
    each time the balance drops below it."""
    with db().transaction() as session:
        stored = low_balance.set_threshold(
            session, wiring().config, current_principal().user_id, args["low_balance_threshold"]
        )
    return dataclasses.asdict(stored)
