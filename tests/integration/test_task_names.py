"""Tasks are sent by name (the API never imports `workers/`): every name the app or beat sends
must be one the Celery app registers, or the message would sit in the queue unconsumed."""

from __future__ import annotations

from typing import Any

from app import queue
from celeryconfig import beat_schedule

SENT_BY_NAME = [
    queue.SETTLE_SHARD,
    queue.PROCESS_WITHDRAWAL,
    queue.CHECK_DEPOSIT,
    queue.WEBHOOK_DELIVER,
    queue.WORKER_LIVENESS,
]


def test_every_task_the_app_sends_is_registered(celery_app: Any) -> None:
    celery_app.loader.import_default_modules()
    missing = [name for name in SENT_BY_NAME if name not in celery_app.tasks]
    assert missing == []


def test_every_beat_job_names_a_registered_task(celery_app: Any) -> None:
    celery_app.loader.import_default_modules()
    scheduled = {entry["task"] for entry in beat_schedule.values()}
    assert scheduled - set(celery_app.tasks) == set()
