"""Settlement tasks. They take a shard number (an id), never objects."""

from __future__ import annotations

import logging

from celery import shared_task

from app import queue
from app.bootstrap import wiring
from app.services import settlement

log = logging.getLogger(__name__)


@shared_task(name=queue.SETTLE_SHARD, ignore_result=True)
def settle_shard(shard: int) -> int:
    w = wiring()
    w.queue.clear_kick(shard)
    report = settlement.run_shard(w, shard)
    if report.settled:
        log.info("shard %s: settled %s in %s batches", shard, report.settled, report.batches)
    return report.settled


@shared_task(name="settlement.sweep", ignore_result=True)
def sweep() -> list[int]:
    return settlement.sweep(wiring())
