"""Settlement throughput: drain a backlog of PENDING transfers with real Celery workers and
compare with pgbench TPC-B on the same PostgreSQL in the same run."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import threading
import time
import uuid
from decimal import Decimal

from sqlalchemy import text

from app.bootstrap import Wiring, bootstrap
from app.config import Config
from app.services import movement, settlement, transfers
from app.services.invariants import check
from app.services.recording import shard_of
from app.services.wallets import SystemWallets, ensure_user_wallet
from bench.stack import ROOT, BenchStack

FUNDING = Decimal(1000)


def migrate(url: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "alembic", "-x", f"url={url}", "upgrade", "head"],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def _drain_in_process(wiring: Wiring) -> None:
    while True:
        with wiring.db.engine.connect() as conn:
            shards = (
                conn.execute(
                    text("SELECT DISTINCT shard FROM transactions WHERE status = 'pending'")
                )
                .scalars()
                .all()
            )
        if not shards:
            return
        for shard in shards:
            settlement.run_shard(wiring, shard)


def prepare(wiring: Wiring, users: int, count: int) -> None:
    """1,000 funded users (through issuance and rewards), then `count` PENDING transfers among
    them, reserved and sequenced exactly as the API records them."""
    system = SystemWallets(wiring.db)
    with wiring.db.transaction() as session:
        wallet_ids = [ensure_user_wallet(session, uuid.uuid4(), "user") for _ in range(users)]
    service = uuid.uuid4()
    with wiring.db.transaction() as session:
        ensure_user_wallet(session, service, "service")
    transfers.mint(wiring, system, FUNDING * users, "bench")
    _drain_in_process(wiring)
    with wiring.db.transaction() as session:
        user_ids = (
            session.execute(
                text("SELECT user_id FROM wallets WHERE id = ANY(CAST(:ids AS uuid[]))"),
                {"ids": wallet_ids},
            )
            .scalars()
            .all()
        )
    transfers.reward(
        wiring,
        system,
        service,
        movement.Idempotency("bench-funding", "bench"),
        [transfers.RewardItem(u, FUNDING, "bench") for u in user_ids],
    )
    _drain_in_process(wiring)

    rng = random.Random(7)
    senders = [rng.choice(wallet_ids) for _ in range(count)]
    recipients = [rng.choice([w for w in wallet_ids[:50] if w != s] or wallet_ids) for s in senders]
    recipients = [
        r if r != s else wallet_ids[(wallet_ids.index(s) + 1) % users]
        for s, r in zip(senders, recipients, strict=True)
    ]
    seqs, next_seq = [], dict.fromkeys(wallet_ids, 0)
    for s in senders:
        next_seq[s] += 1
        seqs.append(next_seq[s])
    shards = wiring.config.settlement_shards
    with wiring.db.transaction() as session:
        session.execute(
            text(
                """
                INSERT INTO transactions (id, kind, debit_wallet_id, credit_wallet_id, amount,
                                          seq, shard, created_at)
                SELECT gen_random_uuid(), 'transfer', d, c, 1, s, sh, clock_timestamp()
                  FROM unnest(CAST(:d AS uuid[]), CAST(:c AS uuid[]), CAST(:s AS bigint[]),
                              CAST(:sh AS smallint[])) AS v(d, c, s, sh)
                """
            ),
            {
                "d": senders,
                "c": recipients,
                "s": seqs,
                "sh": [shard_of(s, shards) for s in senders],
            },
        )
        session.execute(
            text(
                """
                UPDATE wallet_counters c
                   SET next_seq = c.next_seq + v.n, reserved_total = c.reserved_total + v.n
                  FROM (SELECT debit_wallet_id AS id, COUNT(*) AS n FROM transactions
                         WHERE status = 'pending' GROUP BY debit_wallet_id) v
                 WHERE c.wallet_id = v.id
                """
            )
        )
        session.execute(text("ANALYZE"))


# The ORDER BY keeps it on the pending index (a seq scan would stop at the first pending row,
# but walk ever more settled rows to get there).
_ANY_PENDING = text(
    "SELECT 1 FROM transactions WHERE status = 'pending' AND stage IS NULL"
    " ORDER BY shard, created_at LIMIT 1"
)


def _start_workers(env: dict[str, str], concurrency: int) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "workers.celery_app",
            "worker",
            "--loglevel=INFO",
            f"--concurrency={concurrency}",
            "--queues=settlement,default",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    ready = threading.Event()

    def watch() -> None:
        assert worker.stderr is not None
        for line in worker.stderr:
            if " ready." in line:
                ready.set()

    threading.Thread(target=watch, daemon=True).start()
    if not ready.wait(60):
        worker.kill()
        raise RuntimeError("celery worker did not start")
    return worker


def settle_tps(stack: BenchStack, *, users: int, count: int, concurrency: int) -> dict[str, float]:
    dbname = stack.fresh_database("bench_settle")
    url = stack.url(dbname)
    migrate(url)
    config = Config.from_env({}).replace(database_url=url, redis_url=stack.redis_url)
    wiring = bootstrap(config)
    prepare(wiring, users, count)

    env = dict(
        os.environ,
        APP_ENV="development",
        DATABASE_URL=stack.app_url(dbname),
        REDIS_URL=stack.redis_url,
        PYTHONPATH=str(ROOT),
    )
    worker = _start_workers(env, concurrency)
    try:
        started = time.perf_counter()
        for shard in range(config.settlement_shards):
            wiring.queue.kick_settlement(shard, force=True)
        # Probe the pending index; a COUNT(*) over the whole table every 50 ms took a good part
        # of a core away from the workers being measured.
        with wiring.db.engine.connect() as conn:
            while conn.scalar(_ANY_PENDING):
                conn.commit()
                time.sleep(0.05)
        elapsed = time.perf_counter() - started
    finally:
        worker.terminate()
        worker.wait(30)
    with wiring.db.transaction() as session:
        violations = check(session)
        completed = session.scalar(
            text(
                "SELECT COUNT(*) FROM transactions WHERE kind = 'transfer' AND status = 'completed'"
            )
        )
    wiring.db.dispose()
    if violations:
        raise RuntimeError(f"ledger invariants violated after the run: {violations[:3]}")
    return {"seconds": elapsed, "tps": count / elapsed, "completed": float(completed or 0)}
