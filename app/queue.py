"""Publishing work to the Celery workers from the API and beat, by task name (the API never
imports `workers/`). Publishing is best effort: the database is the source of truth and the
sweeper re-enqueues anything whose message was lost, so a broker outage never fails a request."""

from __future__ import annotations

import logging
from typing import Any

import redis
from celery import Celery
from celery.signals import before_task_publish

import celeryconfig
from app import logs
from app.hot_redis import HotRedis

log = logging.getLogger(__name__)

# The names of the tasks the API, beat and the workers send each other (workers/tasks registers
# them under these names; tests/integration/test_task_names.py keeps the two in step).
SETTLE_SHARD = "settlement.settle_shard"
PROCESS_WITHDRAWAL = "chain.process_withdrawal"
CHECK_DEPOSIT = "chain.check_deposit"
WEBHOOK_DELIVER = "webhooks.deliver"
WORKER_LIVENESS = "maintenance.liveness"
LIVENESS_KEY = "worker:liveness"  # the time the worker last consumed a liveness probe
_KICK_FLAG = "settle:queued:{shard}"
_KICK_FLAG_TTL = 10


@before_task_publish.connect
def _carry_request_id(headers: dict[str, Any] | None = None, **_: Any) -> None:
    """Tasks a request causes carry its id, so their log lines can be joined to it."""
    rid = logs.request_id.get()
    if rid and headers is not None:
        headers.setdefault("request_id", rid)


class TaskQueue:
    def __init__(
        self, broker_url: str, redis_client: redis.Redis, *, broker_is_redis_client: bool = True
    ) -> None:
        self._broker_is_redis_client = broker_is_redis_client
        self._celery = Celery("wallet-producer", set_as_current=False)
        self._celery.config_from_object("celeryconfig")
        self._celery.conf.broker_url = broker_url
        self._celery.conf.broker_transport_options = celeryconfig.transport_options(broker_url)
        self._celery.conf.broker_connection_timeout = 2
        self._celery.conf.broker_connection_retry = False
        # A task-sent event is one more Redis PUBLISH per request; Flower sees the task from the
        # worker's received/started/succeeded events all the same.
        self._celery.conf.task_send_sent_event = False
        self._redis = redis_client
        self._hot = HotRedis(redis_client)

    def send(self, name: str, *args: Any) -> bool:
        try:
            self._celery.send_task(name, args=list(args), retry=False)
            return True
        except Exception as exc:  # noqa: BLE001 - any broker failure: the sweeper recovers
            log.warning("could not enqueue %s%s: %s", name, args, exc)
            return False

    def depth(self, queue: str) -> int | None:
        """Messages waiting in `queue`; None while the broker cannot be asked."""
        try:
            if self._broker_is_redis_client:  # the broker is REDIS_URL: one LLEN
                return int(self._redis.llen(queue))
            with self._celery.connection_for_write() as connection:  # RabbitMQ, another Redis
                declared = connection.default_channel.queue_declare(queue, passive=True)
                return int(declared.message_count)
        except Exception as exc:  # noqa: BLE001 - a gauge is skipped, never fails the job
            log.warning("queue depth of %s unavailable: %s", queue, exc)
            return None

    def kick_settlement(self, shard: int, *, force: bool = False) -> None:
        """Ask for shard `shard` to be settled. A short-lived flag coalesces a burst of kicks into
        one queued job (the job clears the flag when it starts)."""
        try:
            if not force and not self._hot.execute(
                "SET", _KICK_FLAG.format(shard=shard), 1, "NX", "EX", _KICK_FLAG_TTL
            ):
                return
        except redis.RedisError as exc:
            log.warning("redis unavailable, settlement kick for shard %s deferred: %s", shard, exc)
            return
        self.send(SETTLE_SHARD, shard)

    def clear_kick(self, shard: int) -> None:
        try:
            self._redis.delete(_KICK_FLAG.format(shard=shard))
        except redis.RedisError:
            pass
