"""Alert tasks: the low-balance beat job."""

from __future__ import annotations

import logging

from celery import shared_task

from app.bootstrap import wiring
from app.services import low_balance

log = logging.getLogger(__name__)


@shared_task(name="alerts.low_balance", ignore_result=True)
def low_balance_alerts() -> int:
    run = low_balance.run(wiring())
    if run.alerted or run.armed:
        log.info("low balance: %s alerted, %s armed", run.alerted, run.armed)
    return run.alerted
