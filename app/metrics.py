"""Prometheus counters. Defined once here; incremented by services after their commit."""

from __future__ import annotations

from prometheus_client import Counter

WALLET_CONNECTIONS = Counter("wallet_connections_total", "Wallet address connections", ["result"])
WALLET_DISCONNECTIONS = Counter("wallet_disconnections_total", "Wallet address disconnections")
