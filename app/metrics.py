"""Prometheus metrics, defined once. Safe under several processes: when PROMETHEUS_MULTIPROC_DIR
is set (make run and gunicorn set it) every process — API workers, Celery workers, beat — writes
there and GET /metrics aggregates them all."""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

WALLET_CONNECTIONS = Counter("wallet_connections_total", "Wallet address connections", ["result"])
WALLET_DISCONNECTIONS = Counter("wallet_disconnections_total", "Wallet address disconnections")

HTTP_REQUESTS = Counter("http_requests_total", "API requests", ["method", "endpoint", "status"])
HTTP_LATENCY = Histogram(
    "http_request_duration_seconds",
    "API request latency",
    ["method", "endpoint"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
# Request methods counted under their own name; anything else (`curl -X PROBE1 …`) is "other",
# so a client cannot mint label values (each one a time series kept forever).
KNOWN_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_request_series: dict[tuple[str, str, str], tuple[Any, Any]] = {}


def observe_request(method: str, endpoint: str, status: int, seconds: float) -> None:
    """Count one API request and its latency. `endpoint` must be a route pattern (bounded)."""
    method = method if method in KNOWN_METHODS else "other"
    key = (method, endpoint, str(status))
    series = _request_series.get(key)
    if series is None:  # `labels()` validates and locks on every call: resolve each series once
        series = (HTTP_REQUESTS.labels(*key), HTTP_LATENCY.labels(method, endpoint))
        _request_series[key] = series
    series[0].inc()
    series[1].observe(seconds)


ERRORS = Counter("api_errors_total", "Problem responses by stable code", ["code", "status"])
TRANSACTIONS = Counter(
    "wallet_transactions_total", "Transactions reaching a state", ["kind", "status"]
)
SETTLEMENT_LATENCY = Histogram(
    "settlement_latency_seconds",
    "From acceptance (created_at) to a final ledger state",
    buckets=(0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300),
)
QUEUE_DEPTH = Gauge(
    "celery_queue_depth",
    "Messages waiting in a Celery queue (LLEN)",
    ["queue"],
    multiprocess_mode="mostrecent",
)
AVERAGE_BALANCE = Gauge(
    "wallet_average_balance", "Average balance of user wallets", multiprocess_mode="mostrecent"
)
PENDING_TRANSACTIONS = Gauge(
    "wallet_pending_transactions", "PENDING transactions", multiprocess_mode="mostrecent"
)


def render() -> tuple[bytes, str]:
    """The exposition of every process's metrics (multi-process mode) or this process's."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    from prometheus_client import REGISTRY

    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
