"""gunicorn settings from the environment."""

import os

_port = os.environ.get("API_PORT", os.environ.get("PORT", "8000"))
bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{_port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
accesslog = "-"
