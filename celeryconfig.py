"""Celery configuration. Delivery is at-least-once (Redis broker): tasks are idempotent, acked
late, re-run if their worker dies, and the visibility timeout exceeds the hard time limit so a
long task is never handed to a second worker while the first still runs."""

from app.config import Config

# The same declarations as every other process (app/config.py): periods and the broker URL.
_config = Config.from_env()

broker_url = _config.redis_url
result_backend = None
task_ignore_result = True

task_acks_late = True
task_reject_on_worker_lost = True
task_time_limit = 120
task_soft_time_limit = 100
broker_transport_options = {"visibility_timeout": 300}  # > task_time_limit
broker_connection_retry_on_startup = True
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
