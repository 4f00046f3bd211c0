"""The baseline of the API benchmarks: what a user would otherwise write. Plain Flask on gunicorn
with 4 sync workers, one psycopg connection per worker process (autocommit), no ORM, no auth
check (the bearer value is taken as the user id), no validation beyond parsing the JSON.

- POST /api/wallet/transfer: one INSERT + one LPUSH.
- GET /api/wallet: one indexed SELECT of the wallet row plus its 20 newest history rows.

Its own small tables in its own fresh database (`create_schema`, `seed`); served by
`gunicorn bench.bare_app:app` with BARE_DATABASE_URL (libpq) and BARE_REDIS_URL.
"""

from __future__ import annotations

import os
from typing import Any

import psycopg
import redis
from flask import Flask, request

QUEUE = "bench:bare:settle"
SCHEMA = """
CREATE TABLE bare_wallets (user_id uuid PRIMARY KEY, balance numeric(18, 6) NOT NULL);
CREATE TABLE bare_transactions (
    id bigserial PRIMARY KEY,
    wallet_id uuid NOT NULL,
    counterparty_id uuid NOT NULL,
    amount numeric(18, 6) NOT NULL,
    idempotency_key text,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX bare_transactions_history ON bare_transactions (wallet_id, id DESC);
"""
_INSERT = """
INSERT INTO bare_transactions (wallet_id, counterparty_id, amount, idempotency_key)
VALUES (%s, %s, %s, %s) RETURNING id
"""
_WALLET = """
SELECT w.user_id, w.balance, h.id, h.counterparty_id, h.amount, h.created_at
  FROM bare_wallets w
  LEFT JOIN LATERAL (
        SELECT id, counterparty_id, amount, created_at FROM bare_transactions t
         WHERE t.wallet_id = w.user_id ORDER BY t.id DESC LIMIT 20) h ON true
 WHERE w.user_id = %s
"""

app = Flask(__name__)
_connections: dict[str, Any] = {}


def _db() -> psycopg.Connection[Any]:
    conn: psycopg.Connection[Any] | None = _connections.get("db")
    if conn is None or conn.closed:
        conn = psycopg.connect(os.environ["BARE_DATABASE_URL"], autocommit=True)
        _connections["db"] = conn
    return conn


def _redis() -> redis.Redis:
    client: redis.Redis | None = _connections.get("redis")
    if client is None:
        client = redis.Redis.from_url(os.environ["BARE_REDIS_URL"])
        _connections["redis"] = client
    return client


def _user() -> str:
    return request.headers.get("Authorization", "").removeprefix("Bearer ").strip()


@app.post("/api/wallet/transfer")
def transfer() -> tuple[dict[str, Any], int]:
    body = request.get_json(force=True)
    key = request.headers.get("Idempotency-Key")
    row = _db().execute(_INSERT, (_user(), body["recipient_id"], body["amount"], key)).fetchone()
    assert row is not None
    _redis().lpush(QUEUE, row[0])
    return {"success": True, "transaction_id": row[0], "status": "pending"}, 202


@app.get("/api/wallet")
def wallet() -> tuple[dict[str, Any], int]:
    rows = _db().execute(_WALLET, (_user(),)).fetchall()
    if not rows:
        return {"title": "wallet not found"}, 404
    history = [
        {"id": r[2], "counterparty": str(r[3]), "amount": str(r[4]), "timestamp": r[5].isoformat()}
        for r in rows
        if r[2] is not None
    ]
    return {
        "wallet": {"id": str(rows[0][0]), "balance": str(rows[0][1])},
        "transaction_history": history,
    }, 200


@app.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def create_schema(libpq_url: str, user_ids: list[str], history_per_user: int = 30) -> None:
    """The tables, one wallet per user and `history_per_user` transactions each."""
    with psycopg.connect(libpq_url, autocommit=True) as conn:
        conn.execute(SCHEMA)
        conn.execute(
            "INSERT INTO bare_wallets SELECT unnest(CAST(%s AS uuid[])), 1000", (user_ids,)
        )
        conn.execute(
            """
            INSERT INTO bare_transactions (wallet_id, counterparty_id, amount)
            SELECT w.user_id, w.user_id, 0.01 FROM bare_wallets w, generate_series(1, %s)
            """,
            (history_per_user,),
        )
        conn.execute("ANALYZE")
