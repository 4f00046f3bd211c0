"""`python -m devstack.watchdog`: restarts a Celery worker that is running but no longer consumes.

supervisord restarts a worker that exits, not one that hangs: after a Redis restart a Celery
worker can stay up, reconnected, and never take a task again (celery/celery#8030, #9054, #10302;
seen here in the chaos suite). Every PROBE_SECONDS this sends a liveness task through the broker;
the worker that consumes it stamps `worker:liveness` in Redis. When no probe has been consumed for
STALE_SECONDS while the broker and Redis answer, the worker is restarted through supervisorctl
(logged), and judged again only after a grace period. Run by `make run` under supervisord.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path

import redis
from celery import Celery

from app import logs, queue
from app.config import Config

PROBE_SECONDS = 5.0
STALE_SECONDS = 30.0
GRACE_SECONDS = 45.0  # after a (re)start: the worker boots and drains what waited

log = logging.getLogger("devstack.watchdog")


def stale(last_consumed: float | None, since: float, now: float) -> bool:
    """Whether the worker has consumed no probe for STALE_SECONDS (counting from `since`, the
    watchdog's start or the last restart, while it has consumed none)."""
    return now - max(last_consumed or 0.0, since) > STALE_SECONDS


def main() -> int:
    logs.configure()
    config = Config.from_env()
    conf = Path(os.environ["DEVSTACK_VAR_DIR"]) / "supervisord.conf"
    producer = Celery("watchdog", set_as_current=False)
    producer.config_from_object("celeryconfig")
    producer.conf.update(broker_connection_retry=False, broker_connection_timeout=2)
    store = redis.Redis.from_url(config.redis_url, socket_timeout=2, socket_connect_timeout=2)
    since = time.time() + GRACE_SECONDS - STALE_SECONDS
    while True:
        time.sleep(PROBE_SECONDS)
        try:
            producer.send_task(queue.WORKER_LIVENESS, retry=False)
            raw = store.get(queue.LIVENESS_KEY)
        except Exception as exc:  # noqa: BLE001 - broker or Redis down: nothing to judge
            log.info("liveness probe not sent (%s); the worker is not judged meanwhile", exc)
            since = time.time()
            continue
        now = time.time()
        if not stale(float(raw) if raw else None, since, now):
            continue
        log.warning("worker consumed no liveness probe for %.0f s: restarting it", STALE_SECONDS)
        bin_dir = Path(sys.executable).parent
        subprocess.run(
            [str(bin_dir / "supervisorctl"), "-c", str(conf), "restart", "worker"], check=False
        )
        since = time.time() + GRACE_SECONDS - STALE_SECONDS


if __name__ == "__main__":
    sys.exit(main())
