"""Webhook tasks: deliver one notification (by id), and the beat job re-sending due deliveries."""

from __future__ import annotations

import logging

from celery import shared_task

from app import queue
from app.bootstrap import wiring
from app.services import notifications, webhooks

log = logging.getLogger(__name__)


@shared_task(name=queue.WEBHOOK_DELIVER, ignore_result=True)
def deliver(notification_id: int) -> str:
    attempt = webhooks.deliver(wiring(), notification_id)
    if attempt.retry_in is not None:
        try:
            deliver.apply_async(args=[notification_id], countdown=attempt.retry_in)
        except Exception as exc:  # noqa: BLE001 - broker down: `webhooks.retry_due` recovers
            log.warning("could not schedule webhook retry of %s: %s", notification_id, exc)
    return attempt.status


@shared_task(name="webhooks.retry_due", ignore_result=True)
def retry_due() -> int:
    w = wiring()
    ids = webhooks.due(w)
    for notification_id in ids:
        w.queue.send(notifications.WEBHOOK_DELIVER, notification_id)
    return len(ids)
