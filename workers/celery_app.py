"""`celery -A workers.celery_app worker|beat|flower`."""

from app import logs
from workers.bootstrap import make_celery

logs.configure()
celery = make_celery()
