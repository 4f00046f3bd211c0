"""problem+json (RFC 9457) for every error, defined once."""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import marshmallow as ma
from flask import Flask, Response, json, request
from flask_smorest import Api
from werkzeug.exceptions import HTTPException

from app import metrics
from app.domain.errors import WalletError

log = logging.getLogger(__name__)

PROBLEM_MIMETYPE = "application/problem+json"
_CODES_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limited",
    500: "internal_error",
    503: "service_unavailable",
}


def problem(status: int, code: str, detail: str | None = None, **extra: Any) -> Response:
    metrics.ERRORS.labels(code, str(status)).inc()
    title = HTTPStatus(status).phrase
    body = {
        "type": f"https://errors.wallet.local/{code}",
        "title": title,
        "status": status,
        "detail": detail or title,
        "code": code,
        "instance": request.path,
        **extra,
    }
    return Response(json.dumps(body), status=status, mimetype=PROBLEM_MIMETYPE)


def wallet_error(error: WalletError) -> Response:
    """The problem+json of a domain error; one that says when to come back (`retry_after`
    seconds: too many streams, an address still cooling down) also sends Retry-After."""
    response = problem(error.status, error.code, error.detail, **error.extra)
    if isinstance(error.extra.get("retry_after"), int):
        response.headers["Retry-After"] = str(error.extra["retry_after"])
    return response


def http_error(error: HTTPException) -> Response:
    status = error.code or 500
    extra: dict[str, Any] = {}
    messages = getattr(error, "data", {}).get("messages") if hasattr(error, "data") else None
    if messages:
        # webargs nests errors by location; clients care about the fields.
        extra["errors"] = messages.get("json", messages) if isinstance(messages, dict) else messages
    response = problem(
        status, _CODES_BY_STATUS.get(status, "http_error"), error.description, **extra
    )
    for name, value in error.get_headers() if status == 405 else []:
        if name.lower() == "allow":
            response.headers["Allow"] = value
    return response


def unexpected_error(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return problem(500, "internal_error", "An unexpected error occurred.")


class ProblemSchema(ma.Schema):
    """What `problem` sends: the OpenAPI document's error responses (documentation only)."""

    class Meta:
        unknown = ma.INCLUDE  # an error may add members (`errors`, `retry_after`, …)

    type = ma.fields.String(required=True)
    title = ma.fields.String(required=True)
    status = ma.fields.Integer(required=True)
    detail = ma.fields.String(required=True)
    code = ma.fields.String(required=True, metadata={"description": "Stable error code"})
    instance = ma.fields.String(required=True)
    errors = ma.fields.Raw(metadata={"description": "Invalid fields and why"})


class ProblemApi(Api):
    """flask-smorest's Api, answering its own errors (422 validation, 404, …) as problem+json."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        """Documents the error responses as sent: problem+json, not flask-smorest's JSON."""
        self.DEFAULT_RESPONSE_CONTENT_TYPE = PROBLEM_MIMETYPE
        try:
            super()._register_responses()
        finally:
            del self.DEFAULT_RESPONSE_CONTENT_TYPE  # success responses stay application/json

    def handle_http_exception(self, error: HTTPException) -> Response:
        return http_error(error)


def register(app: Flask) -> None:
    app.register_error_handler(WalletError, wallet_error)
    app.register_error_handler(HTTPException, http_error)
    app.register_error_handler(Exception, unexpected_error)
