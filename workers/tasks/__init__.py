"""Celery tasks: thin — take ids, call one service function, let the service commit."""

from workers.tasks import maintenance, settlement

__all__ = ["maintenance", "settlement"]
