"""gunicorn settings from the environment."""

import os

_port = os.environ.get("API_PORT", os.environ.get("PORT", "8000"))
bind = f"{os.environ.get('API_HOST', '127.0.0.1')}:{_port}"
# gevent: each connection is a greenlet, so an open notification stream (Server-Sent Events)
# costs a little memory and no thread; WEB_CONNECTIONS bounds the connections per worker
# (streams plus requests). Each worker has one Redis pub/sub connection for all of its streams
# and one catch-up query every SSE_CATCH_UP_SECONDS (app/services/live.py). Measured on the
# 2-core machine (devstack/stream_load.py): GET /api/wallet under gevent at least matches gthread
# (4 × 8 threads, where 32 open streams took every thread), and its p99 with 1,000 open streams
# stays within issue 9's 2× of the p99 with none. The libraries cooperate once patched: psycopg
# ≥ 3.1.14 picks a patchable wait function when it sees gevent's patched `select` (checked below),
# redis-py and kombu use the patched socket, SQLAlchemy's pool the patched locks.
# WEB_WORKER_CLASS=gthread (with WEB_THREADS) or sync still work, with one thread per stream.
worker_class = os.environ.get("WEB_WORKER_CLASS", "gevent")
# One gevent worker per core: a gevent worker overlaps its requests' waits on PostgreSQL and
# Redis by itself, so more processes than cores only add context switches, and keep-alive
# connections stay with the worker that accepted them, so more workers split a client's
# connections less evenly. Measured on the 2-core machine with the Celery worker settling
# (alternated 8 s wrk rounds, README): 2 workers answered 1,067–1,105 POST /api/wallet/transfer
# req/s with a p99 of 49–54 ms, 4 workers 920–1,031 req/s and 61–70 ms. At least 2, so a worker
# that dies or restarts never leaves the port unanswered. gthread and sync keep 4: they serve one
# request per thread, so they need more processes.
_cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
_one_per_core = max(2, _cores or 1)
workers = int(os.environ.get("WEB_CONCURRENCY", _one_per_core if worker_class == "gevent" else 4))
worker_connections = int(os.environ.get("WEB_CONNECTIONS", "1000"))
threads = int(os.environ.get("WEB_THREADS", "8"))
timeout = 60
graceful_timeout = 20
accesslog = None  # the app writes one JSON access line per request (app/api/observability.py)


def post_worker_init(worker):  # type: ignore[no-untyped-def]
    """Under gevent, refuse to serve if psycopg would block the whole worker on each query, and
    end the worker's streams as soon as it is asked to stop (otherwise every stream would hold
    the shutdown for graceful_timeout)."""
    if "gevent" not in worker.cfg.worker_class_str:
        return
    import gevent
    import psycopg.waiting

    if psycopg.waiting.wait is getattr(psycopg.waiting, "wait_c", None):
        worker.log.error("psycopg uses its C wait function under gevent: it would block")
        raise SystemExit(3)  # gunicorn's "worker failed to boot": the arbiter stops

    def drain_when_stopping() -> None:
        from app.services import live

        while worker.alive:
            gevent.sleep(0.5)
        live.drain()

    gevent.spawn(drain_when_stopping)


def child_exit(server, worker):  # type: ignore[no-untyped-def]
    """Multi-process Prometheus metrics: forget a dead worker's live gauges."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
