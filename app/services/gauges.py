"""Gauges refreshed by beat: queue depths, pending work, average user balance."""

from __future__ import annotations

from sqlalchemy import text

from app import metrics
from app.bootstrap import Wiring

QUEUES = ("default", "settlement", "chain")


def refresh(wiring: Wiring) -> dict[str, float]:
    values: dict[str, float] = {}
    for queue in QUEUES:
        depth = wiring.queue.depth(queue)
        if depth is None:
            continue
        metrics.QUEUE_DEPTH.labels(queue).set(depth)
        values[f"queue:{queue}"] = float(depth)
    with wiring.db.transaction() as session:
        average, pending = session.execute(
            text(
                "SELECT (SELECT COALESCE(AVG(balance), 0) FROM wallets WHERE kind = 'user'),"
                " (SELECT COUNT(*) FROM transactions WHERE status = 'pending')"
            )
        ).one()
    metrics.AVERAGE_BALANCE.set(float(average))
    metrics.PENDING_TRANSACTIONS.set(float(pending))
    values.update(average_balance=float(average), pending=float(pending))
    return values
