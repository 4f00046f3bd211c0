"""gunicorn settings from the environment."""

import os

_port = os.environ.get("API_PORT", os.environ.get("PORT", "8000"))
bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{_port}"
workers = int(os.environ.get("WEB_CONCURRENCY", "4"))
# Threads, not sync workers: each open notification stream (Server-Sent Events) holds one thread
# for as long as the client stays connected, so WEB_CONCURRENCY × WEB_THREADS bounds the number of
# concurrent streams plus requests (4 × 8 = 32 by default; raise WEB_THREADS for more). Many
# thousands of streams would want an async worker class (gevent); that is not set up here.
worker_class = "gthread"
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
accesslog = None  # the app writes one JSON access line per request (app/api/observability.py)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Multi-process Prometheus metrics: forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
