"""The caller's alert settings: the low-balance threshold."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import marshmallow as ma
from apispec import APISpec
from flask_smorest import Blueprint

from app.api.auth import current_principal, requires
from app.api.context import db, wiring
from app.api.schemas import Amount, StrictSchema
from app.config import Config
from app.domain.money import POSITIVE_AMOUNT_PATTERN, to_wire
from app.services import low_balance

bp = Blueprint(
    "settings", __name__, url_prefix="/api/wallet", description="The caller's alert settings"
)

SETTINGS_ROLES = ("user", "admin")
SECURITY: list[dict[str, list[str]]] = [{"bearerAuth": []}]


def _at_most_the_largest_transfer(value: Decimal) -> None:
    """Bounded so that one setting cannot make the minute job scan every wallet (its range scan
    reaches up to the highest threshold in use)."""
    largest = wiring().config.max_transfer_amount
    if value > largest:
        raise ma.ValidationError(f"must be at most {to_wire(largest)} (MAX_TRANSFER_AMOUNT)")


class SettingsRequestSchema(StrictSchema):
    low_balance_threshold = Amount(
        required=True,
        allow_none=True,
        positive=True,
        validate=_at_most_the_largest_transfer,
        metadata={
            "description": "Alert below this balance: more than 0 and at most "
            "MAX_TRANSFER_AMOUNT (the largest amount one transaction may move); null for the "
            "platform default."
        },
    )


def document_bounds(spec: APISpec, config: Config) -> None:
    """The document states the threshold's bounds in force (MAX_TRANSFER_AMOUNT is
    configuration, the schema is not): a positive decimal string, or a number in (0, max]."""
    largest = config.max_transfer_amount
    field = spec.components.schemas["SettingsRequest"]["properties"]["low_balance_threshold"]
    field["anyOf"] = [
        {"type": "string", "pattern": POSITIVE_AMOUNT_PATTERN},
        {
            "type": "number",
            "minimum": 0,
            "exclusiveMinimum": True,
            "maximum": int(largest) if largest == largest.to_integral_value() else float(largest),
        },
    ]


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
    """Set the low-balance threshold (more than 0, at most MAX_TRANSFER_AMOUNT), or null for the
    platform default. One alert is sent each time the balance drops below it."""
    with db().transaction() as session:
        stored = low_balance.set_threshold(
            session, wiring().config, current_principal().user_id, args["low_balance_threshold"]
        )
    return dataclasses.asdict(stored)
