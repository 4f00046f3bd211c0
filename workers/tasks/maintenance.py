"""Periodic housekeeping: idempotency key expiry, ledger invariant checks."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from app import queue
from app.bootstrap import wiring
from app.services import escrow_expiry, gauges, idempotency, invariants, step_up

log = logging.getLogger(__name__)


@shared_task(name="maintenance.expire_idempotency_keys", ignore_result=True)
def expire_idempotency_keys() -> int:
    with wiring().db.transaction() as session:
        return idempotency.expire(session)


@shared_task(name="maintenance.check_ledger", ignore_result=True)
def check_ledger() -> int:
    with wiring().db.transaction() as session:
        violations = invariants.check(session)
        warning = invariants.history_warning(session)
    for v in violations:
        log.critical("LEDGER INVARIANT VIOLATED %s %s: %s", v.rule, v.subject, v.detail)
    if warning:
        log.warning(warning)
    return len(violations)


@shared_task(name="maintenance.refresh_gauges", ignore_result=True)
def refresh_gauges() -> dict[str, float]:
    return gauges.refresh(wiring())


@shared_task(name="maintenance.expire_holds", ignore_result=True)
def expire_holds() -> int:
    released = escrow_expiry.expire(wiring())
    if released:
        log.info("escrow holds: %s expired and released", released)
    return released


@shared_task(name="maintenance.expire_unconfirmed", ignore_result=True)
def expire_unconfirmed() -> int:
    failed = step_up.expire(wiring())
    if failed:
        log.info("step-up: %s unconfirmed transactions failed", failed)
    return failed


@shared_task(name=queue.WORKER_LIVENESS, ignore_result=True)
def liveness() -> None:
    """The watchdog's probe (devstack/watchdog.py): consuming it proves the worker still takes
    tasks from the broker, which a worker hung after a broker restart no longer does."""
    wiring().redis.set(queue.LIVENESS_KEY, str(time.time()), ex=3600)
