"""Structured JSON logs with a request id that follows a request into the tasks it causes.

Never a token, key, signature or secret in a log line: the formatter redacts bearer tokens, JWTs
and any extra field whose name says it is secret.
"""

from __future__ import annotations

import contextvars
import functools
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

import orjson

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)

_SECRET_NAMES = re.compile(r"(secret|token|password|signature|private|authorization|key)", re.I)
_SECRET_VALUES = [
    re.compile(r"Bearer\s+[A-Za-z0-9._~+/=-]+", re.I),
    re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"\b[1-9A-HJ-NP-Za-km-z]{80,90}\b"),  # base58 ed25519 signatures
]
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
REDACTED = "[redacted]"


def redact(text: str) -> str:
    for pattern in _SECRET_VALUES:
        text = pattern.sub(REDACTED, text)
    return text


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        for name, value in vars(record).items():
            if name in _STANDARD or name.startswith("_") or name == "request_id":
                continue
            entry[name] = REDACTED if _is_secret_name(name) else _safe(value)
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return _dumps(entry)


@functools.lru_cache(maxsize=1024)
def _is_secret_name(name: str) -> bool:
    return _SECRET_NAMES.search(name) is not None


def _dumps(entry: dict[str, Any]) -> str:
    """orjson (a line per request: the standard encoder was half of the formatter's time);
    anything it refuses (an integer beyond 64 bits, …) goes through the standard encoder."""
    try:
        return orjson.dumps(entry, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except orjson.JSONEncodeError:
        return json.dumps(entry, default=str)


def _safe(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


_factory_installed = False


def stamp_request_ids() -> None:
    """Every log record carries the current request id as `record.request_id`. Idempotent."""
    global _factory_installed
    if _factory_installed:
        return
    _factory_installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return record

    logging.setLogRecordFactory(factory)


_configured = False


def configure(level: str | None = None) -> None:
    """JSON lines on stderr (LOG_FORMAT=text for plain text). Idempotent."""
    global _configured
    if _configured:
        return
    _configured = True
    stamp_request_ids()
    handler = logging.StreamHandler(sys.stderr)
    if os.environ.get("LOG_FORMAT", "json") == "json":
        handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level or os.environ.get("LOG_LEVEL", "INFO"))
