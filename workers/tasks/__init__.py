"""Celery tasks: thin — take ids, call one service function, let the service commit."""
