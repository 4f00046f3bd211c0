"""Per-request bookkeeping: the request id (taken from or given as X-Request-ID), one JSON access
log line, and request count/latency metrics by endpoint and status."""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Flask, Response, g, request

from app import logs, metrics
from app.services import audit

log = logging.getLogger("app.access")
_VALID_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id_for(incoming: str) -> str:
    """The client's X-Request-ID when it is a sane one, else a new id."""
    return incoming if _VALID_ID.match(incoming) else uuid.uuid4().hex


def _begin() -> None:
    g.request_id = request_id_for(request.headers.get("X-Request-ID", ""))
    g.request_token = logs.request_id.set(g.request_id)
    g.ip_token = audit.client_ip.set(request.remote_addr)
    g.started = time.perf_counter()


def _finish(response: Response) -> Response:
    response.headers["X-Request-ID"] = g.get("request_id", "")
    endpoint = request.url_rule.rule if request.url_rule else "unmatched"
    elapsed = time.perf_counter() - g.get("started", time.perf_counter())
    principal = g.get("principal")
    record(
        request.method,
        request.path,
        endpoint,
        response.status_code,
        elapsed,
        principal.user_id if principal else None,
        request.remote_addr,
    )
    return response


def record(
    method: str,
    path: str,
    endpoint: str,
    status: int,
    elapsed: float,
    user_id: uuid.UUID | None,
    ip: str | None,
) -> None:
    """The request's access log line and metrics (`endpoint` is the route pattern)."""
    metrics.observe_request(method, endpoint, status, elapsed)
    log.info(
        "%s %s %s",
        method,
        path,
        status,
        extra={
            "status": status,
            "duration_ms": round(elapsed * 1000, 2),
            "endpoint": endpoint,
            "user_id": str(user_id) if user_id else None,
            "ip": ip,
        },
    )


def _teardown(_error: BaseException | None) -> None:
    token = g.pop("request_token", None)
    if token is not None:
        logs.request_id.reset(token)
    ip_token = g.pop("ip_token", None)
    if ip_token is not None:
        audit.client_ip.reset(ip_token)


def register(app: Flask) -> None:
    logs.stamp_request_ids()
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_teardown)
