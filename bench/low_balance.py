"""Low-balance scan: one run of the alert job over 1,000,000 wallets, against a plain full scan
of the same tables (every wallet joined to its user, balance compared with the threshold) in the
same run on the same PostgreSQL."""

from __future__ import annotations

import time
from decimal import Decimal

from sqlalchemy import text

from app.bootstrap import Wiring, bootstrap
from app.config import Config
from app.services import low_balance
from bench.settlement import migrate
from bench.stack import BenchStack

DEFAULT_THRESHOLD = Decimal(10)

# Deterministic population, by i in 1..n:
#   every 1000th (+1) user has a custom threshold of 50, every 1000th (+2) one of 5;
#   every 250th wallet is armed and below its threshold (fires);
#   every 100th (+5) is new and empty (disarmed, stays so), every 100th (+7) is disarmed above its
#   threshold (gets armed); the rest are armed with 100–5,099 tokens.
_USERS = text(
    """
    INSERT INTO users (id, role, low_balance_threshold)
    SELECT md5(i::text)::uuid, 'user',
           CASE i % 1000 WHEN 1 THEN 50 WHEN 2 THEN 5 END
      FROM generate_series(1, :n) AS i
    """
)
_WALLETS = text(
    """
    INSERT INTO wallets (user_id, kind, balance, low_balance_armed)
    SELECT md5(i::text)::uuid, 'user',
           CASE WHEN i % 250 = 0 THEN 1 + i % 7
                WHEN i % 100 = 5 THEN 0
                WHEN i % 100 = 7 THEN 500
                ELSE 100 + i % 5000 END,
           NOT (i % 100 IN (5, 7))
      FROM generate_series(1, :n) AS i
    """
)
_FULL_SCAN = text(
    """
    SELECT count(*)
      FROM wallets w JOIN users u ON u.id = w.user_id
     WHERE w.kind = 'user' AND w.balance < COALESCE(u.low_balance_threshold, :default)
    """
)


def populate(wiring: Wiring, wallets: int) -> None:
    with wiring.db.transaction() as session:
        session.execute(_USERS, {"n": wallets})
        session.execute(_WALLETS, {"n": wallets})
    _vacuum(wiring)


def _vacuum(wiring: Wiring) -> None:
    with wiring.db.engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("VACUUM ANALYZE"))


def scan_seconds(stack: BenchStack, *, wallets: int = 1_000_000) -> dict[str, float]:
    dbname = stack.fresh_database("bench_low_balance")
    url = stack.url(dbname)
    migrate(url)
    config = Config.from_env({}).replace(
        database_url=url, redis_url=stack.redis_url, default_low_balance_threshold=DEFAULT_THRESHOLD
    )
    wiring = bootstrap(config)
    try:
        populate(wiring, wallets)
        below = 0
        for _ in range(2):  # the first pass warms the cache for both
            started = time.perf_counter()
            with wiring.db.transaction() as session:
                below = int(session.scalar(_FULL_SCAN, {"default": DEFAULT_THRESHOLD}) or 0)
            baseline = time.perf_counter() - started

        started = time.perf_counter()
        first = low_balance.run(wiring)
        seconds = time.perf_counter() - started

        started = time.perf_counter()
        again = low_balance.run(wiring)
        rerun = time.perf_counter() - started

        _vacuum(wiring)  # as autovacuum would between runs: drops entries of old row versions
        started = time.perf_counter()
        low_balance.run(wiring)
        steady = time.perf_counter() - started
    finally:
        wiring.db.dispose()
    return {
        "wallets": float(wallets),
        "seconds": seconds,
        "baseline_seconds": baseline,
        "below": float(below),
        "alerted": float(first.alerted),
        "armed": float(first.armed),
        "rerun_seconds": rerun,
        "rerun_alerted": float(again.alerted),
        "steady_seconds": steady,
    }
