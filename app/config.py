"""Configuration from environment variables (twelve-factor), with development defaults.

Everything the process needs is read once into a frozen `Config`; tests build their own. Each
variable is declared once, as a `Config` field made by `setting` (name, default, type, help);
`from_env` reads them, celeryconfig.py builds the beat schedule from them, and the README's
configuration table is generated from them (`make config-docs`).

The defaults of JWT_SECRET and WALLET_DATA_KEY are published in this repository, so they are
development values: outside an explicit APP_ENV=development (`make run` and the tests set it) the
app, the Celery worker and beat refuse to start (`refuse_insecure`, called by `create_app`) while
a secret is missing, shorter than 32 bytes or a development value, or WEBHOOK_URL is set without
a WEBHOOK_SECRET of 32 bytes or more.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from typing import Any

DEV_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/wallet"
DEV_REDIS_URL = "redis://127.0.0.1:6379/0"
DEVELOPMENT = "development"
DEV_JWT_SECRET = "dev-insecure-secret-change-me-0123456789"
DEV_WALLET_DATA_KEY = "dev:ZGV2LW9ubHktd2FsbGV0LWRhdGEta2V5LTMyYnl0ZXM="
MIN_SECRET_BYTES = 32
# Bearer tokens name who issued them and for whom (`iss`, `aud`); both are checked.
DEFAULT_JWT_ISSUER = "token-wallet"
DEFAULT_JWT_AUDIENCE = "token-wallet-api"


_MAKE_RUN = "embedded (make run) / "


def setting(env: str, default: Any, help: str, *, shown: str | None = None) -> Any:
    """A `Config` field read from the environment variable `env`: its one declaration (name,
    default, type from the annotation, help). `shown` replaces the default in the README table
    where the default a user meets is another (make run's embedded servers, a generated secret)."""
    return field(default=default, metadata={"env": env, "help": help, "shown": shown})


@dataclass(frozen=True)
class Config:
    app_env: str = setting(
        "APP_ENV",
        "production",
        "anything but `development` refuses to start (API, worker, beat) while `JWT_SECRET` or a"
        " `WALLET_DATA_KEY` key is unset, shorter than 32 bytes or a published development"
        " value, or `WEBHOOK_URL` is set without a 32-byte `WEBHOOK_SECRET`",
        shown="`production` (`make run`, the tests and bench set `development`)",
    )
    database_url: str = setting(
        "DATABASE_URL",
        DEV_DATABASE_URL,
        "PostgreSQL, SQLAlchemy URL of the application role (API, worker, beat, CLI; see"
        " Security: database roles)",
        shown=f"{_MAKE_RUN}`{DEV_DATABASE_URL}`",
    )
    database_pool_size: int = setting(
        "DATABASE_POOL_SIZE",
        15,
        "Most PostgreSQL connections a process opens (SQLAlchemy pool); each is kept once opened",
    )
    redis_url: str = setting(
        "REDIS_URL",
        DEV_REDIS_URL,
        "Celery broker, locks, rate limits, pub/sub",
        shown=f"{_MAKE_RUN}`{DEV_REDIS_URL}`",
    )
    broker_url: str = setting(
        "CELERY_BROKER_URL",
        "",
        "the Celery broker for worker, beat and API when it is not REDIS_URL, e.g. RabbitMQ"
        " `amqp://user:pass@host:5672/vhost` (Redis stays required for rate limits, kicks,"
        " pub/sub)",
        shown="`REDIS_URL`",
    )
    # Bearer tokens
    jwt_secret: str = setting(
        "JWT_SECRET",
        DEV_JWT_SECRET,
        "HS256 secret for bearer tokens, ≥ 32 bytes (required by docker-compose)",
        shown="generated into `var/jwt_secret` by make run",
    )
    jwt_leeway_seconds: int = setting(
        "JWT_LEEWAY_SECONDS", 30, "clock skew allowed on a token's `exp`, `iat` and `nbf`"
    )
    jwt_issuer: str = setting(
        "JWT_ISSUER", DEFAULT_JWT_ISSUER, "required `iss` of bearer tokens (issued ones carry it)"
    )
    jwt_audience: str = setting(
        "JWT_AUDIENCE",
        DEFAULT_JWT_AUDIENCE,
        "required `aud` of bearer tokens (issued ones carry it)",
    )
    jwt_max_lifetime_seconds: int = setting(
        "JWT_MAX_LIFETIME_SECONDS",
        86400,
        "tokens need `iat` and `exp` at most this far apart (a leaked token expires);"
        " `flask users token --hours` is capped by it",
    )
    # Transfers and settlement
    max_transfer_amount: Decimal = setting(
        "MAX_TRANSFER_AMOUNT", Decimal("1000000"), "largest amount one transaction may move"
    )
    default_low_balance_threshold: Decimal = setting(
        "LOW_BALANCE_THRESHOLD", Decimal("10"), "platform default for low-balance alerts"
    )
    settlement_shards: int = setting(
        "SETTLEMENT_SHARDS",
        2,
        "settlement partitions (by debit wallet); one job per shard at a time — match the worker"
        " processes consuming the `settlement` queue",
    )
    settlement_batch_size: int = setting(
        "SETTLEMENT_BATCH_SIZE", 5000, "most transactions settled per database commit"
    )
    settlement_max_attempts: int = setting(
        "SETTLEMENT_MAX_ATTEMPTS",
        5,
        "a transaction that keeps breaking settlement then fails `settlement_error`",
    )
    settlement_job_seconds: float = setting(
        "SETTLEMENT_JOB_SECONDS",
        5.0,
        "a settlement job hands its shard over (re-queues itself) after this long",
    )
    settlement_linger_seconds: float = setting(
        "SETTLEMENT_LINGER_SECONDS",
        0.25,
        "a shard with only a trickle of work waits this long between batches instead of"
        " spinning (bounds settlement latency; frees CPU for the API)",
    )
    sweeper_interval_seconds: float = setting(
        "SWEEPER_INTERVAL_SECONDS",
        5.0,
        "beat period of the sweeper that re-enqueues PENDING work whose enqueue was lost",
    )
    sweeper_stale_seconds: float = setting(
        "SWEEPER_STALE_SECONDS", 3.0, "age of PENDING work the sweeper re-enqueues"
    )
    idempotency_ttl_hours: int = setting(
        "IDEMPOTENCY_TTL_HOURS", 24, "how long Idempotency-Keys are remembered"
    )
    max_prefer_wait_seconds: int = setting(
        "MAX_PREFER_WAIT_SECONDS", 10, "longest `Prefer: wait=N` a request may ask for"
    )
    ledger_check_interval_seconds: float = setting(
        "LEDGER_CHECK_INTERVAL_SECONDS", 300.0, "period of the beat ledger invariant check"
    )
    # Step-up confirmation
    step_up_amount: Decimal = setting(
        "STEP_UP_AMOUNT",
        Decimal("50000"),
        "transfers and withdrawals of at least this much wait for the connected wallet's"
        " signature (0: no platform default); a user may set a lower amount of their own",
    )
    step_up_confirmation_seconds: int = setting(
        "STEP_UP_CONFIRMATION_SECONDS",
        600,
        "a transaction awaiting confirmation for longer fails `unconfirmed` and its reservation"
        " is released",
    )
    step_up_expiry_interval_seconds: float = setting(
        "STEP_UP_EXPIRY_INTERVAL_SECONDS",
        30.0,
        "beat period of the job that fails unconfirmed transactions",
    )
    # Escrow holds
    hold_default_expiry_seconds: int = setting(
        "HOLD_DEFAULT_EXPIRY_SECONDS",
        7 * 86400,
        "an escrow hold placed without `expires_in_seconds` is released after this (7 days)",
    )
    hold_max_expiry_seconds: int = setting(
        "HOLD_MAX_EXPIRY_SECONDS", 90 * 86400, "the longest `expires_in_seconds` accepted (90 days)"
    )
    hold_expiry_interval_seconds: float = setting(
        "HOLD_EXPIRY_INTERVAL_SECONDS", 60.0, "beat period of the escrow-hold expiry job"
    )
    # Fraud rules at settlement (see app/domain/fraud.py)
    fraud_velocity_count: int = setting(
        "FRAUD_VELOCITY_COUNT", 1000, "debits per sender per hour before a debit is held"
    )
    fraud_velocity_amount: Decimal = setting(
        "FRAUD_VELOCITY_AMOUNT",
        Decimal("1000000"),
        "amount per sender per hour before a debit is held",
    )
    fraud_history_min: int = setting(
        "FRAUD_HISTORY_MIN", 5, "transfers a sender needs before their history is compared"
    )
    fraud_history_multiplier: Decimal = setting(
        "FRAUD_HISTORY_MULTIPLIER",
        Decimal("10"),
        "a debit this many times above the sender's average is held",
    )
    fraud_history_window: int = setting(
        "FRAUD_HISTORY_WINDOW", 50, "the sender's recent transfers that make their average"
    )
    fraud_new_recipient_amount: Decimal = setting(
        "FRAUD_NEW_RECIPIENT_AMOUNT",
        Decimal("10000"),
        "a first transfer to a recipient at or above this is held",
    )
    # Solana
    solana_rpc_url: str = setting(
        "SOLANA_RPC_URL",
        "http://127.0.0.1:8899",
        "any standard Solana JSON-RPC endpoint (devnet, mainnet)",
        shown="local cluster (make run) / `http://127.0.0.1:8899`",
    )
    token_mint: str = setting(
        "TOKEN_MINT", "", "the platform token's SPL mint", shown="from the local cluster"
    )
    token_decimals: int = setting("TOKEN_DECIMALS", 6, "the mint's decimals")
    treasury_address: str = setting(
        "TREASURY_ADDRESS",
        "",
        "the treasury's public address: all the API needs (deposits are paid to it)",
        shown="from the local cluster",
    )
    treasury_keypair: str = setting(
        "TREASURY_KEYPAIR",
        "",
        "the worker's only: path to the treasury keypair JSON (Solana CLI format) or the JSON"
        " array itself; signs withdrawals and must be `TREASURY_ADDRESS`'s key; the API"
        " (`wsgi.py`) drops it",
        shown="from the local cluster",
    )
    solana_chain_id: str = setting(
        "SOLANA_CHAIN_ID", "localnet", "`Chain ID` in wallet sign-in messages"
    )
    rpc_timeout_seconds: float = setting("SOLANA_RPC_TIMEOUT_SECONDS", 5.0, "per JSON-RPC call")
    rpc_retries: int = setting(
        "SOLANA_RPC_RETRIES", 3, "transient JSON-RPC failures retry with exponential backoff"
    )
    chain_poll_seconds: float = setting(
        "CHAIN_POLL_SECONDS", 3.0, "beat period of the chain watcher (withdrawals, deposits)"
    )
    deposit_ttl_minutes: int = setting(
        "DEPOSIT_TTL_MINUTES", 30, "an unpaid deposit request expires after this"
    )
    late_deposit_grace_hours: int = setting(
        "LATE_DEPOSIT_GRACE_HOURS",
        168,
        "how long expired deposits are still watched for a late payment",
    )
    external_balance_cache_seconds: int = setting(
        "EXTERNAL_BALANCE_CACHE_SECONDS",
        15,
        "how long a connected address's on-chain balance is cached for GET /api/wallet",
    )
    withdrawal_min_amount: Decimal = setting(
        "WITHDRAWAL_MIN_AMOUNT", Decimal("1"), "smallest withdrawal (422 `amount_below_minimum`)"
    )
    # A stolen session cannot connect its own address and cash out at once.
    withdrawal_new_address_cooldown_seconds: int = setting(
        "WITHDRAWAL_NEW_ADDRESS_COOLDOWN_SECONDS",
        86400,
        "wait after connecting a new address before withdrawals to it (422 `address_cooldown`)",
        shown="`86400` (make run: `60`)",
    )
    deposit_max_open_per_user: int = setting(
        "DEPOSIT_MAX_OPEN_PER_USER",
        5,
        "deposit requests a user may have awaiting payment at once (409 `too_many_open_deposits`)",
    )
    deposit_view_check_seconds: float = setting(
        "DEPOSIT_VIEW_CHECK_SECONDS",
        10.0,
        "viewing an unpaid deposit asks the chain (one quick try) at most once per this interval"
        " per deposit",
        shown="`10` (tests: `0`)",
    )
    # Notifications
    webhook_url: str = setting(
        "WEBHOOK_URL", "", "POST every notification there, signed with HMAC-SHA256", shown="unset"
    )
    webhook_secret: str = setting(
        "WEBHOOK_SECRET", "", "the webhook signing secret (≥ 32 bytes)", shown="unset"
    )
    webhook_max_attempts: int = setting(
        "WEBHOOK_MAX_ATTEMPTS", 8, "webhook retries (exponential backoff)"
    )
    webhook_timeout_seconds: float = setting("WEBHOOK_TIMEOUT_SECONDS", 5.0, "per webhook attempt")
    webhook_retry_seconds: float = setting(
        "WEBHOOK_RETRY_SECONDS", 10.0, "beat period that re-queues due webhook retries"
    )
    low_balance_interval_seconds: float = setting(
        "LOW_BALANCE_INTERVAL_SECONDS", 60.0, "period of the low-balance alert job"
    )
    # Notification streams (SSE)
    sse_heartbeat_seconds: float = setting(
        "SSE_HEARTBEAT_SECONDS", 15.0, "keep-alive comment period on notification streams"
    )
    sse_max_streams_per_user: int = setting(
        "SSE_MAX_STREAMS_PER_USER",
        5,
        "open streams per user across all processes; the next gets 429 `too_many_streams` with"
        " Retry-After",
    )
    sse_stream_lifetime_seconds: float = setting(
        "SSE_STREAM_LIFETIME_SECONDS",
        300.0,
        "a stream then ends; EventSource resumes with Last-Event-ID",
    )
    sse_catch_up_seconds: float = setting(
        "SSE_CATCH_UP_SECONDS",
        5.0,
        "how often each process checks the database for notifications whose wake-up was lost",
    )
    # Encryption at rest: "<kid>:<base64 key>[,…]"; the development default is NOT secret.
    wallet_data_key: str = setting(
        "WALLET_DATA_KEY",
        DEV_WALLET_DATA_KEY,
        "`<kid>:<base64 32 bytes>[,…]`; first seals, all unseal; required by docker-compose",
        shown="a development key (not secret; refused outside development)",
    )
    # Rate limits ("N/second|minute|hour|day", the `limits` syntax)
    ratelimit_storage_url: str = setting(
        "RATELIMIT_STORAGE_URL", "", "where rate-limit counters live", shown="`REDIS_URL`"
    )
    rate_limit_default: str = setting(
        "RATE_LIMIT_DEFAULT",
        "600/minute",
        "per user (per IP without a valid token), every endpoint",
    )
    rate_limit_money: str = setting(
        "RATE_LIMIT_MONEY",
        "60/minute",
        "transfer, withdrawals, deposits, internal charges/rewards/refunds, escrow holds (place,"
        " capture, void), step-up confirmation",
    )
    rate_limit_wallet_auth: str = setting(
        "RATE_LIMIT_WALLET_AUTH", "10/minute", "wallet challenge and connect"
    )
    rate_limit_auth_failures: str = setting(
        "RATE_LIMIT_AUTH_FAILURES",
        "20/minute",
        "failed authentications per client IP on any route (the stream too); the first of a"
        " window is audited (`auth.failed`), the overflow once (`auth.throttled`), beyond it 429",
    )
    # HTTP
    metrics_token: str = setting(
        "METRICS_TOKEN",
        "",
        "when set, GET /metrics needs `Authorization: Bearer <token>`",
        shown="unset",
    )
    trusted_proxies: int = setting(
        "TRUSTED_PROXIES",
        0,
        "reverse proxies whose `X-Forwarded-For`/`-Proto` are believed (werkzeug ProxyFix);"
        " 0 = the peer address is the client, for rate limits, audit and logs",
    )
    domain: str = setting(
        "APP_DOMAIN",
        "",
        "domain named in wallet sign-in messages; browser wallets refuse one that is not the"
        " page's host:port, so set it to the public host in production",
        shown="*(empty: the request's host and port)*",
    )

    @property
    def celery_broker_url(self) -> str:
        return self.broker_url or self.redis_url

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        """Every declared variable that is set in `env` (default: the process environment)."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for declared in fields(cls):
            raw = env.get(declared.metadata["env"])
            if raw is not None:
                values[declared.name] = _PARSE[str(declared.type)](raw)
        return cls(**values)

    def replace(self, **changes: Any) -> Config:
        return replace(self, **changes)


_PARSE: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": int,
    "float": float,
    "Decimal": Decimal,
}


@dataclass(frozen=True)
class Documented:
    """A variable read outside `Config` (by gunicorn.conf.py, devstack, logging, docker-compose
    or alembic), declared here so the README's table has one source."""

    env: str
    shown: str
    help: str


PROCESS_SETTINGS = (
    Documented(
        "MIGRATION_DATABASE_URL",
        "`DATABASE_URL`",
        "the schema owner's URL, for `alembic upgrade` only; never give it to the processes",
    ),
    Documented(
        "APP_DATABASE_PASSWORD",
        "required by docker-compose",
        "password of compose's application login `wallet_app_user` (URL-safe)",
    ),
    Documented("PORT", "`8000`", "API port (make run)"),
    Documented("FLOWER_PORT", "`5555`", "Flower port (make run)"),
    Documented(
        "FLOWER_BASIC_AUTH", "generated into `var/flower_auth`", "`user:password` for Flower"
    ),
    Documented(
        "WEB_CONCURRENCY",
        "one per CPU core, at least 2 (gevent); `4` (gthread, sync)",
        "gunicorn worker processes",
    ),
    Documented("WEB_CONNECTIONS", "`1000`", "connections per gunicorn worker, streams included"),
    Documented(
        "WEB_WORKER_CLASS",
        "`gevent`",
        "`gthread` (with `WEB_THREADS`) or `sync` still work, with one thread per stream",
    ),
    Documented("WEB_THREADS", "`8`", "threads per worker under `gthread`"),
    Documented("SOLANA_RPC_PORT", "`8899`", "port of the local cluster (make run)"),
    Documented(
        "DEVSTACK_VAR_DIR",
        "`var/`",
        "where `make run` keeps its state, embedded servers, logs and supervisord's socket",
    ),
    Documented(
        "PROMETHEUS_MULTIPROC_DIR",
        "`var/prometheus` (make run)",
        "shared by all processes so /metrics aggregates them",
    ),
    Documented("LOG_FORMAT", "`json`", "JSON lines on stderr (`text` for plain)"),
    Documented(
        "CHROMIUM_PATH", "`/usr/bin/chromium`", "tests only: the Chromium the browser tests drive"
    ),
    Documented("LOG_LEVEL", "`INFO`", "log level of every process"),
)


def markdown_table() -> str:
    """The README's configuration table, generated from the declarations (a unit test keeps the
    README equal to it; `make config-docs` writes it there)."""
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for declared in fields(Config):
        meta = declared.metadata
        shown = meta["shown"] or _shown(declared.default)
        rows.append(f"| `{meta['env']}` | {shown} | {meta['help']} |")
    rows += [f"| `{d.env}` | {d.shown} | {d.help} |" for d in PROCESS_SETTINGS]
    return "\n".join(rows) + "\n"


def _shown(default: Any) -> str:
    if default == "":
        return "unset"
    if isinstance(default, float) and default.is_integer():
        default = int(default)
    return f"`{default}`"


class InsecureConfigError(RuntimeError):
    """The configuration may not run outside development (see the module docstring)."""


def insecure_settings(config: Config) -> list[str]:
    """Why `config` must not run outside development (nothing in development)."""
    if config.app_env == DEVELOPMENT:
        return []
    problems = _secret_problems("JWT_SECRET", config.jwt_secret.encode(), DEV_JWT_SECRET.encode())
    dev_key = base64.b64decode(DEV_WALLET_DATA_KEY.partition(":")[2])
    for entry in (e.strip() for e in config.wallet_data_key.split(",") if e.strip()):
        kid, _, encoded = entry.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except binascii.Error:
            problems.append(f"WALLET_DATA_KEY entry {kid!r} is not <kid>:<base64 key>")
            continue
        problems += [
            f"{p} (key {kid!r})" for p in _secret_problems("WALLET_DATA_KEY", key, dev_key)
        ]
    if not config.wallet_data_key.strip():
        problems.append("WALLET_DATA_KEY is empty")
    if config.webhook_url and len(config.webhook_secret.encode()) < MIN_SECRET_BYTES:
        problems.append(
            f"WEBHOOK_URL is set but WEBHOOK_SECRET is missing or shorter than {MIN_SECRET_BYTES}"
            " bytes (receivers could not trust the signature)"
        )
    return problems


def _secret_problems(name: str, value: bytes, development_value: bytes) -> list[str]:
    if value == development_value:
        return [f"{name} is a development value published in the repository (or unset)"]
    if len(value) < MIN_SECRET_BYTES:
        return [f"{name} is shorter than {MIN_SECRET_BYTES} bytes"]
    return []


def refuse_insecure(config: Config) -> None:
    """Raise `InsecureConfigError`, naming every problem, unless `config` is safe to run."""
    problems = insecure_settings(config)
    if problems:
        raise InsecureConfigError(
            f"Refusing to start with APP_ENV={config.app_env!r}: "
            + "; ".join(problems)
            + ". Set each secret to a random value of at least 32 bytes (`python -c 'import"
            " secrets; print(secrets.token_urlsafe(32))'`; a WALLET_DATA_KEY from `python -c"
            " 'from app.sealing import generate_key_spec; print(generate_key_spec())'`), or"
            " APP_ENV=development on a development machine."
        )
