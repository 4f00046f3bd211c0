"""Celery tasks: thin — take ids, call one service function, let the service commit."""

from workers.tasks import alerts, chain, maintenance, settlement, webhooks

__all__ = ["alerts", "chain", "maintenance", "settlement", "webhooks"]
