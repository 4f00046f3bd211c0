"""Builds the Celery app, tied to a Flask app so every task runs inside its app context."""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, Task
from flask import Flask

import celeryconfig
from app import create_app, logs

log = logging.getLogger("workers")


def make_celery(flask_app: Flask | None = None) -> Celery:
    app = flask_app or create_app()

    class AppContextTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            token = logs.request_id.set(getattr(self.request, "request_id", None))
            try:
                log.info("task %s started", self.name)
                with app.app_context():
                    return self.run(*args, **kwargs)
            finally:
                logs.request_id.reset(token)

    celery = Celery("wallet", task_cls=AppContextTask)
    celery.config_from_object("celeryconfig")
    broker_url = app.extensions["wallet"].config.celery_broker_url
    celery.conf.broker_url = broker_url
    celery.conf.broker_transport_options = celeryconfig.transport_options(broker_url)
    celery.set_default()
    app.extensions["celery"] = celery
    return celery
