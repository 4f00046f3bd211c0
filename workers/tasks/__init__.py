"""Celery tasks: thin — take ids, call one service function, let the service commit."""

from workers.tasks import chain, maintenance, settlement

__all__ = ["chain", "maintenance", "settlement"]
