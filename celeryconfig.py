"""Celery configuration. Delivery is at-least-once (Redis or RabbitMQ broker): tasks are
idempotent, acked late, re-run if their worker dies, and (Redis) the visibility timeout exceeds
the hard time limit so a long task is never handed to a second worker while the first still runs.

Broker restarts: the worker keeps retrying the broker forever instead of exiting after 100
attempts, and probes idle broker connections (Redis health checks, AMQP heartbeats) so a restarted
broker is noticed within seconds. One known way out remains: kombu's Redis transport can raise
`AttributeError: 'NoneType' object has no attribute 'hostname'` (or `… 'client'`) from
`Channel._connparams` while it closes a connection the broker already dropped, and the worker
exits (celery/kombu#582; the same code is still in kombu 5.7.0, the newest release, so there is
no fixed version to pin: requirements.txt pins 5.7.0). That exit is why `make run` supervises
every process (devstack/supervision.py) and docker-compose restarts them: the worker comes back
and the redelivered tasks are idempotent.
"""

from app.config import Config

# The same declarations as every other process (app/config.py): periods and the broker URL.
# CELERY_BROKER_URL selects another broker (RabbitMQ: amqp://user:pass@host:5672/vhost); by
# default the broker is REDIS_URL. The API publishes to the same broker.
_config = Config.from_env()

broker_url = _config.celery_broker_url
result_backend = None
task_ignore_result = True

task_acks_late = True
task_reject_on_worker_lost = True
task_time_limit = 120
task_soft_time_limit = 100

broker_connection_retry = True
broker_connection_retry_on_startup = True
broker_connection_max_retries = None  # never give up on the broker (the default exits after 100)
broker_connection_timeout = 5
# A task still running when the broker connection drops finishes; its message was not acked, so
# it is redelivered (Redis: after the visibility timeout; RabbitMQ: at once) and runs again, which
# idempotent tasks allow. Celery's default today, set explicitly: Celery still warns on each lost
# connection that 6.0 will cancel such tasks instead.
worker_cancel_long_running_tasks_on_connection_loss = False
# AMQP: heartbeats every 10 s find a dead RabbitMQ connection (the default is 120 s).
broker_heartbeat = 10


def transport_options(url: str) -> dict[str, object]:
    """Broker options for `url` (whoever sets broker_url sets these with it)."""
    if url.startswith(("redis://", "rediss://", "redis+socket://", "unix://")):
        return {
            "visibility_timeout": 300,  # > task_time_limit
            "health_check_interval": 10,  # PING idle connections: a restarted Redis is noticed
            "socket_keepalive": True,
            "socket_connect_timeout": 5,
            "retry_on_timeout": True,
        }
    return {"confirm_publish": True}  # RabbitMQ: a publish returns once the broker has it


broker_transport_options = transport_options(broker_url)
worker_prefetch_multiplier = 1
task_serializer = "json"
accept_content = ["json"]
timezone = "UTC"
enable_utc = True

# Flower shows tasks only with events on.
worker_send_task_events = True
task_send_sent_event = True

imports = ("workers.tasks",)
task_default_queue = "default"
task_routes = {
    "settlement.*": {"queue": "settlement"},
    "chain.*": {"queue": "chain"},
}


beat_schedule: dict[str, dict[str, object]] = {
    # Re-enqueue settlement for PENDING transactions whose enqueue was lost.
    "sweep-pending": {
        "task": "settlement.sweep",
        "schedule": _config.sweeper_interval_seconds,
        "options": {"expires": 30},
    },
    # Withdrawals forward and deposits watched on the chain.
    "chain-poll": {
        "task": "chain.poll",
        "schedule": _config.chain_poll_seconds,
        "options": {"expires": 30},
    },
    "scan-late-deposits": {"task": "chain.scan_late_deposits", "schedule": 300.0},
    "refresh-gauges": {"task": "maintenance.refresh_gauges", "schedule": 15.0},
    "expire-idempotency-keys": {"task": "maintenance.expire_idempotency_keys", "schedule": 3600.0},
    # Escrow holds past their expiry are released.
    "expire-holds": {
        "task": "maintenance.expire_holds",
        "schedule": _config.hold_expiry_interval_seconds,
        "options": {"expires": 120},
    },
    # Transfers and withdrawals never confirmed by the connected wallet fail (`unconfirmed`).
    "expire-unconfirmed": {
        "task": "maintenance.expire_unconfirmed",
        "schedule": _config.step_up_expiry_interval_seconds,
        "options": {"expires": 60},
    },
    "check-ledger": {
        "task": "maintenance.check_ledger",
        "schedule": _config.ledger_check_interval_seconds,
    },
    # Webhook deliveries whose countdown retry was lost (or whose worker died mid-POST).
    "webhooks-retry-due": {
        "task": "webhooks.retry_due",
        "schedule": _config.webhook_retry_seconds,
        "options": {"expires": 30},
    },
    # One alert per crossing below a wallet's low-balance threshold.
    "low-balance-alerts": {
        "task": "alerts.low_balance",
        "schedule": _config.low_balance_interval_seconds,
        "options": {"expires": 120},
    },
}
