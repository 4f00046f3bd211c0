"""Configuration from environment variables (twelve-factor), with development defaults.

Everything the process needs is read once into a frozen `Config`; tests build their own.

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
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
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


def _decimal(env: Mapping[str, str], name: str, default: str) -> Decimal:
    return Decimal(env.get(name, default))


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    return int(env.get(name, str(default)))


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    return float(env.get(name, str(default)))


@dataclass(frozen=True)
class Config:
    # "development" accepts the development secrets below; anything else refuses them.
    app_env: str = "production"
    database_url: str = DEV_DATABASE_URL
    redis_url: str = DEV_REDIS_URL
    jwt_secret: str = DEV_JWT_SECRET
    jwt_leeway_seconds: int = 30
    jwt_issuer: str = DEFAULT_JWT_ISSUER
    jwt_audience: str = DEFAULT_JWT_AUDIENCE
    # A token must carry `iat` and `exp` at most this far apart (a leaked token expires).
    jwt_max_lifetime_seconds: int = 86400
    # Transfers
    max_transfer_amount: Decimal = Decimal("1000000")
    default_low_balance_threshold: Decimal = Decimal("10")
    settlement_shards: int = 2  # match the worker processes consuming the settlement queue
    settlement_batch_size: int = 5000
    settlement_max_attempts: int = 5
    settlement_job_seconds: float = 5.0
    sweeper_interval_seconds: float = 5.0
    sweeper_stale_seconds: float = 3.0
    idempotency_ttl_hours: int = 24
    max_prefer_wait_seconds: int = 10
    ledger_check_interval_seconds: float = 300.0
    # Fraud rules at settlement (see app/domain/fraud.py)
    fraud_velocity_count: int = 1000
    fraud_velocity_amount: Decimal = Decimal("1000000")
    fraud_history_min: int = 5
    fraud_history_multiplier: Decimal = Decimal("10")
    fraud_history_window: int = 50
    fraud_new_recipient_amount: Decimal = Decimal("10000")
    # Solana
    solana_rpc_url: str = "http://127.0.0.1:8899"
    token_mint: str = ""
    token_decimals: int = 6
    # The treasury's public address: all the API needs (deposit requests name it). The key
    # itself (TREASURY_KEYPAIR) is only for the chain worker, which signs withdrawals.
    treasury_address: str = ""
    treasury_keypair: str = ""  # path to a keypair JSON file, or the JSON array itself
    solana_chain_id: str = "localnet"
    rpc_timeout_seconds: float = 5.0
    rpc_retries: int = 3
    deposit_ttl_minutes: int = 30
    late_deposit_grace_hours: int = 168
    external_balance_cache_seconds: int = 15
    # Withdrawals: the smallest amount, and how long after connecting a new address the first
    # withdrawal to it must wait (a stolen session cannot connect its own address and cash out).
    withdrawal_min_amount: Decimal = Decimal("1")
    withdrawal_new_address_cooldown_seconds: int = 86400
    # Deposits: open (unpaid, unexpired) requests per user, and how often viewing one may ask the
    # chain (otherwise the stored state is answered; the watcher keeps polling).
    deposit_max_open_per_user: int = 5
    deposit_view_check_seconds: float = 10.0
    # Notifications
    webhook_url: str = ""
    webhook_secret: str = ""
    webhook_max_attempts: int = 8
    webhook_timeout_seconds: float = 5.0
    low_balance_interval_seconds: float = 60.0
    sse_heartbeat_seconds: float = 15.0
    # Encryption at rest: "<kid>:<base64 key>[,…]"; the development default is NOT secret.
    wallet_data_key: str = DEV_WALLET_DATA_KEY
    # Rate limits ("N/second|minute|hour|day", the `limits` syntax). Storage defaults to REDIS_URL.
    ratelimit_storage_url: str = ""
    rate_limit_default: str = "600/minute"
    rate_limit_money: str = "60/minute"
    rate_limit_wallet_auth: str = "10/minute"
    # Failed authentications per client IP on any route (the stream included); beyond it, 429.
    rate_limit_auth_failures: str = "20/minute"
    # HTTP
    metrics_token: str = ""
    # Reverse proxies in front of the API whose X-Forwarded-For/-Proto are believed (that many
    # hops from the right). 0: the peer address is the client, whatever the headers say.
    trusted_proxies: int = 0
    domain: str = "localhost"
    database_pool_size: int = 5
    extra: dict[str, Any] = field(default_factory=dict)
    # Notification streams (SSE): per-user cap across processes, lifetime before the client
    # reconnects with Last-Event-ID, and how often each process checks the database for
    # notifications whose wake-up was lost.
    sse_max_streams_per_user: int = 5
    sse_stream_lifetime_seconds: float = 300.0
    sse_catch_up_seconds: float = 5.0
    # A shard with only a trickle of work: its job waits this long between batches instead of
    # spinning on one transaction at a time (CPU the request path needs).
    settlement_linger_seconds: float = 0.1

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        return cls(
            app_env=env.get("APP_ENV", "production"),
            database_url=env.get("DATABASE_URL", DEV_DATABASE_URL),
            redis_url=env.get("REDIS_URL", DEV_REDIS_URL),
            jwt_secret=env.get("JWT_SECRET", cls.jwt_secret),
            jwt_issuer=env.get("JWT_ISSUER", DEFAULT_JWT_ISSUER),
            jwt_audience=env.get("JWT_AUDIENCE", DEFAULT_JWT_AUDIENCE),
            jwt_max_lifetime_seconds=_int(env, "JWT_MAX_LIFETIME_SECONDS", 86400),
            max_transfer_amount=_decimal(env, "MAX_TRANSFER_AMOUNT", "1000000"),
            default_low_balance_threshold=_decimal(env, "LOW_BALANCE_THRESHOLD", "10"),
            settlement_shards=_int(env, "SETTLEMENT_SHARDS", 2),
            settlement_batch_size=_int(env, "SETTLEMENT_BATCH_SIZE", 5000),
            settlement_max_attempts=_int(env, "SETTLEMENT_MAX_ATTEMPTS", 5),
            sweeper_interval_seconds=_float(env, "SWEEPER_INTERVAL_SECONDS", 5.0),
            sweeper_stale_seconds=_float(env, "SWEEPER_STALE_SECONDS", 3.0),
            idempotency_ttl_hours=_int(env, "IDEMPOTENCY_TTL_HOURS", 24),
            ledger_check_interval_seconds=_float(env, "LEDGER_CHECK_INTERVAL_SECONDS", 300.0),
            fraud_velocity_count=_int(env, "FRAUD_VELOCITY_COUNT", 1000),
            fraud_velocity_amount=_decimal(env, "FRAUD_VELOCITY_AMOUNT", "1000000"),
            fraud_history_min=_int(env, "FRAUD_HISTORY_MIN", 5),
            fraud_history_multiplier=_decimal(env, "FRAUD_HISTORY_MULTIPLIER", "10"),
            fraud_history_window=_int(env, "FRAUD_HISTORY_WINDOW", 50),
            fraud_new_recipient_amount=_decimal(env, "FRAUD_NEW_RECIPIENT_AMOUNT", "10000"),
            solana_rpc_url=env.get("SOLANA_RPC_URL", "http://127.0.0.1:8899"),
            token_mint=env.get("TOKEN_MINT", ""),
            token_decimals=_int(env, "TOKEN_DECIMALS", 6),
            treasury_address=env.get("TREASURY_ADDRESS", ""),
            treasury_keypair=env.get("TREASURY_KEYPAIR", ""),
            solana_chain_id=env.get("SOLANA_CHAIN_ID", "localnet"),
            rpc_timeout_seconds=_float(env, "SOLANA_RPC_TIMEOUT_SECONDS", 5.0),
            rpc_retries=_int(env, "SOLANA_RPC_RETRIES", 3),
            deposit_ttl_minutes=_int(env, "DEPOSIT_TTL_MINUTES", 30),
            late_deposit_grace_hours=_int(env, "LATE_DEPOSIT_GRACE_HOURS", 168),
            withdrawal_min_amount=_decimal(env, "WITHDRAWAL_MIN_AMOUNT", "1"),
            withdrawal_new_address_cooldown_seconds=_int(
                env, "WITHDRAWAL_NEW_ADDRESS_COOLDOWN_SECONDS", 86400
            ),
            deposit_max_open_per_user=_int(env, "DEPOSIT_MAX_OPEN_PER_USER", 5),
            deposit_view_check_seconds=_float(env, "DEPOSIT_VIEW_CHECK_SECONDS", 10.0),
            webhook_url=env.get("WEBHOOK_URL", ""),
            webhook_secret=env.get("WEBHOOK_SECRET", ""),
            webhook_max_attempts=_int(env, "WEBHOOK_MAX_ATTEMPTS", 8),
            webhook_timeout_seconds=_float(env, "WEBHOOK_TIMEOUT_SECONDS", 5.0),
            low_balance_interval_seconds=_float(env, "LOW_BALANCE_INTERVAL_SECONDS", 60.0),
            sse_heartbeat_seconds=_float(env, "SSE_HEARTBEAT_SECONDS", 15.0),
            ratelimit_storage_url=env.get("RATELIMIT_STORAGE_URL", ""),
            rate_limit_default=env.get("RATE_LIMIT_DEFAULT", "600/minute"),
            rate_limit_money=env.get("RATE_LIMIT_MONEY", "60/minute"),
            rate_limit_wallet_auth=env.get("RATE_LIMIT_WALLET_AUTH", "10/minute"),
            rate_limit_auth_failures=env.get("RATE_LIMIT_AUTH_FAILURES", "20/minute"),
            metrics_token=env.get("METRICS_TOKEN", ""),
            trusted_proxies=_int(env, "TRUSTED_PROXIES", 0),
            wallet_data_key=env.get("WALLET_DATA_KEY", cls.wallet_data_key),
            domain=env.get("APP_DOMAIN", "localhost"),
            database_pool_size=_int(env, "DATABASE_POOL_SIZE", 5),
            sse_max_streams_per_user=_int(env, "SSE_MAX_STREAMS_PER_USER", 5),
            sse_stream_lifetime_seconds=_float(env, "SSE_STREAM_LIFETIME_SECONDS", 300.0),
            sse_catch_up_seconds=_float(env, "SSE_CATCH_UP_SECONDS", 5.0),
            settlement_linger_seconds=_float(env, "SETTLEMENT_LINGER_SECONDS", 0.1),
        )

    def replace(self, **changes: Any) -> Config:
        return replace(self, **changes)


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
