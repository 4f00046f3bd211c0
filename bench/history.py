"""GET /api/wallet latency against history length: a wallet with 100,000 transactions and one
with 10, served by the same app from the same database in the same run (issue 9: within 1.5×)."""

from __future__ import annotations

import statistics
import time
import uuid
from typing import Any

from sqlalchemy import text

from app import create_app
from app.api.auth import issue_token
from app.config import Config
from app.services.wallets import ensure_user_wallet
from bench.settlement import migrate
from bench.stack import BenchStack

SECRET = "bench-history-" + "x" * 32

# `count` completed transfers alternating between `a → b` and `b → a`, with their ledger
# entries, created a millisecond apart (what a long-lived wallet looks like to the read path).
_HISTORY = text(
    """
    WITH made AS (
        INSERT INTO transactions (id, kind, status, debit_wallet_id, credit_wallet_id, amount,
                                  seq, shard, created_at, completed_at)
        SELECT gen_random_uuid(), 'transfer', 'completed',
               CASE WHEN i % 2 = 0 THEN :a ELSE :b END,
               CASE WHEN i % 2 = 0 THEN :b ELSE :a END,
               1, :seq0 + i, 0,
               now() - make_interval(secs => (:count - i) / 1000.0),
               now() - make_interval(secs => (:count - i) / 1000.0)
          FROM generate_series(1, :count) AS i
        RETURNING id, debit_wallet_id, credit_wallet_id
    )
    INSERT INTO ledger_entries (transaction_id, wallet_id, amount, balance_after)
    SELECT id, debit_wallet_id, -1, 0 FROM made
    UNION ALL
    SELECT id, credit_wallet_id, 1, 0 FROM made
    """
)


def _wallet_with_history(conn: Any, count: int) -> uuid.UUID:
    owner, other = uuid.uuid4(), uuid.uuid4()
    a = ensure_user_wallet(conn, owner, "user")
    b = ensure_user_wallet(conn, other, "user")
    conn.execute(_HISTORY, {"a": a, "b": b, "count": count, "seq0": 0})
    return owner


def read_latency(
    stack: BenchStack, long: int = 100_000, short: int = 10, rounds: int = 400
) -> dict[str, float]:
    url = stack.url(stack.fresh_database("bench_history"))
    migrate(url)
    config = Config.from_env(
        {
            "APP_ENV": "development",
            "DATABASE_URL": url,
            "REDIS_URL": stack.redis_url,
            "JWT_SECRET": SECRET,
            "RATE_LIMIT_DEFAULT": "100000000/minute",
        }
    )
    app = create_app(config)
    db = app.extensions["wallet"].db
    with db.transaction() as session:
        users = {n: _wallet_with_history(session, n) for n in (long, short)}
    with db.engine.connect() as conn:
        conn.execute(text("ANALYZE"))
        conn.commit()
    client = app.test_client()
    headers = {n: {"Authorization": f"Bearer {issue_token(SECRET, u)}"} for n, u in users.items()}
    timings: dict[int, list[float]] = {long: [], short: []}
    for i in range(rounds + 20):  # interleaved, so drift on this noisy machine hits both alike
        for n in (long, short):
            started = time.perf_counter()
            response = client.get("/api/wallet", headers=headers[n])
            elapsed = time.perf_counter() - started
            assert response.status_code == 200, response.get_data(as_text=True)
            assert len(response.get_json()["transaction_history"]) == min(n, 20)
            if i >= 20:  # warm-up: connections, prepared statements, caches
                timings[n].append(elapsed)
    db.dispose()
    result = {}
    for n, name in ((long, "long"), (short, "short")):
        samples = sorted(timings[n])
        result[f"{name}_p50_ms"] = statistics.median(samples) * 1000
        result[f"{name}_p99_ms"] = samples[int(len(samples) * 0.99) - 1] * 1000
    result["long"], result["short"] = long, short
    return result
