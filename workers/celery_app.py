"""`celery -A workers.celery_app worker|beat|flower`."""

from workers.bootstrap import make_celery

celery = make_celery()
