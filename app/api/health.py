"""Liveness and readiness for orchestrators and on-call."""

from __future__ import annotations

import hmac

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import text

from app import metrics
from app.bootstrap import wiring
from app.domain.errors import AuthenticationError

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify(status="ok")


@bp.get("/metrics")
def prometheus_metrics() -> Response:
    """Prometheus exposition (all processes when PROMETHEUS_MULTIPROC_DIR is set). Protected by a
    bearer token when METRICS_TOKEN is set."""
    token = wiring().config.metrics_token
    if token and not hmac.compare_digest(
        request.headers.get("Authorization", ""), f"Bearer {token}"
    ):
        raise AuthenticationError("metrics token required")
    body, content_type = metrics.render()
    return Response(body, content_type=content_type)


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    adapters = wiring()
    checks: dict[str, str] = {}
    try:
        with adapters.db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        checks["database"] = f"unavailable: {type(exc).__name__}"
    try:
        adapters.redis.ping()
        checks["redis"] = "ok"
    except Exception as exc:  # noqa: BLE001
        checks["redis"] = f"unavailable: {type(exc).__name__}"
    ready = all(value == "ok" for value in checks.values())
    return jsonify(status="ready" if ready else "unavailable", checks=checks), 200 if ready else 503
