"""The caller's settings: the low-balance alert threshold and the step-up amount."""

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
from app.services import low_balance, step_up

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
    """Either setting or both; a setting left out stays as it is."""

    low_balance_threshold = Amount(
        allow_none=True,
        positive=True,
        validate=_at_most_the_largest_transfer,
        metadata={
            "description": "Alert below this balance: more than 0 and at most "
            "MAX_TRANSFER_AMOUNT (the largest amount one transaction may move); null for the "
            "platform default."
        },
    )
    step_up_amount = Amount(
        allow_none=True,
        positive=True,
        metadata={
            "description": "Transfers and withdrawals of at least this much need confirmation "
            "by the connected wallet: more than 0 and at most STEP_UP_AMOUNT (only lower than "
            "the platform's); null for the platform's."
        },
    )

    @ma.validates_schema
    def at_least_one(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data:
            raise ma.ValidationError("give low_balance_threshold, step_up_amount or both")


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
    step_up_amount = Amount(allow_none=True)
    effective_step_up_amount = Amount(
        allow_none=True, metadata={"description": "null: no step-up confirmation."}
    )


@bp.route("/settings", methods=["GET"])
@requires(*SETTINGS_ROLES)
@bp.response(200, SettingsSchema)
@bp.doc(security=SECURITY)
def get_settings() -> dict[str, Any]:
    """The caller's low-balance threshold and step-up amount, and the ones in effect."""
    config, user_id = wiring().config, current_principal().user_id
    with db().transaction() as session:
        alerts = low_balance.settings_of(session, config, user_id)
        stepping = step_up.settings_of(session, config, user_id)
    return {**dataclasses.asdict(alerts), **dataclasses.asdict(stepping)}


@bp.route("/settings", methods=["PUT"])
@requires(*SETTINGS_ROLES)
@bp.arguments(SettingsRequestSchema())
@bp.response(200, SettingsSchema)
@bp.doc(security=SECURITY)
def put_settings(args: dict[str, Any]) -> dict[str, Any]:
    """Set the low-balance threshold (more than 0, at most MAX_TRANSFER_AMOUNT), or null for the
    platform default: one alert is sent each time the balance drops below it. Set the step-up
    amount (at most STEP_UP_AMOUNT), or null for the platform's: transfers and withdrawals of at
    least this much need the connected wallet's confirmation. A setting left out is unchanged."""
    config, user_id = wiring().config, current_principal().user_id
    with db().transaction() as session:
        alerts = (
            low_balance.set_threshold(session, config, user_id, args["low_balance_threshold"])
            if "low_balance_threshold" in args
            else low_balance.settings_of(session, config, user_id)
        )
        stepping = (
            step_up.set_own_amount(session, config, user_id, args["step_up_amount"])
            if "step_up_amount" in args
            else step_up.settings_of(session, config, user_id)
        )
    return {**dataclasses.asdict(alerts), **dataclasses.asdict(stepping)}
