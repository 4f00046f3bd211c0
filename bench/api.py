"""The API benchmarks of issue 9: the project's request path against a bare Flask app, both
driven by wrk from 100 funded users on the same PostgreSQL and Redis in the same run.

"Workers paused" means the Celery worker is not running (it is started after that phase and
settles the backlog the paused phase left before the next load runs): a SIGSTOPped worker could
be frozen inside a settlement batch holding its locks, which is not "no settlement".
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, LiteralString

import psycopg
import redis

from bench import api_stack, bare_app, load, streams
from bench.api_stack import ApiRig
from bench.load import WrkResult, report

CONNECTIONS = 16


def run(rig: ApiRig, seconds: int) -> None:
    started = time.perf_counter()
    bare_url, _ = api_stack.start_bare(rig)
    project_url, _ = api_stack.start_project(rig)
    for url, users in ((bare_url, rig.bare_users), (project_url, rig.load_users)):
        for script in ("transfer.lua", "wallet.lua"):
            load.run(url, script, users, seconds=1)  # warm up every worker process

    bare_post = load.run(bare_url, "transfer.lua", rig.bare_users, seconds=seconds)
    report("bare_post", bare_post)
    bare_get = load.run(bare_url, "wallet.lua", rig.bare_users, seconds=seconds)
    report("bare_get", bare_get)

    paused = load.run(project_url, "transfer.lua", rig.load_users, seconds=seconds)
    report("ingest_workers_paused", paused)
    api_stack.start_worker(rig)
    # Steady state: the backlog the paused phase left is settled before settling-while-ingesting
    # is measured (draining it is the settlement benchmark's job, not the request path's).
    print(f"pending_before_ingest {_wait_settled(rig, 60.0)}", flush=True)
    before = _completed(rig)
    settling = load.run(project_url, "transfer.lua", rig.load_users, seconds=seconds)
    report("ingest", settling)
    print(f"ingest_settled_meanwhile {_completed(rig) - before}")
    _ratio("ingest_ratio_vs_bare", settling, bare_post)
    _ratio("ingest_with_settlement_ratio", settling, paused)

    _end_to_end(rig, project_url, bare_post, seconds * 2)
    _half_load(rig, project_url, settling.ok_rps / 2, seconds)
    print(f"pending_before_reads {_wait_settled(rig, 60.0)}", flush=True)

    read = load.run(project_url, "wallet.lua", rig.load_users, seconds=seconds)
    report("read", read)
    _ratio("read_ratio_vs_bare", read, bare_get)
    streams.measure(rig, project_url, read, seconds)
    _clear_bare_queue(rig)
    print(f"api_section_seconds {time.perf_counter() - started:.0f}", flush=True)


def _ratio(name: str, project: WrkResult, baseline: WrkResult) -> None:
    value = project.ok_rps / baseline.ok_rps if baseline.ok_rps else 0.0
    flag = "" if project.clean and baseline.clean else "  (errors in a run: see !! above)"
    print(f"{name} {value:.2f}  ({project.ok_rps:.0f} / {baseline.ok_rps:.0f} req/s){flag}")
    print(end="", flush=True)


def _end_to_end(rig: ApiRig, url: str, bare_post: WrkResult, seconds: int) -> None:
    """Transfers accepted AND completed within a `seconds` load (worker settling)."""
    t0 = _now(rig)
    result = load.run(url, "transfer.lua", rig.load_users, seconds=seconds)
    t1 = _now(rig)
    row = _one(
        rig,
        """SELECT count(*), count(*) FILTER (WHERE status = 'completed' AND completed_at <= %s)
             FROM transactions WHERE kind = 'transfer' AND created_at BETWEEN %s AND %s""",
        (t1, t0, t1),
    )
    window = (t1 - t0).total_seconds()
    report("e2e_post", result)
    print(f"e2e_accepted {row[0]} in {window:.1f} s; completed within the window {row[1]}")
    e2e = row[1] / window
    ratio = e2e / bare_post.ok_rps if bare_post.ok_rps else 0.0
    print(f"e2e_completed_per_s {e2e:.0f}")
    print(f"e2e_ratio_vs_bare {ratio:.2f}  ({e2e:.0f} / {bare_post.ok_rps:.0f} req/s)")
    print(f"post_p99_ms_at_{CONNECTIONS}_connections {load.ms(result.p99_ms)}", flush=True)


def _half_load(rig: ApiRig, url: str, target_rps: float, seconds: int) -> None:
    """Accepted → COMPLETED p99 with wrk throttled (Lua delay()) to about `target_rps`."""
    if target_rps < 1:
        print("!! half_load skipped: no ingest throughput to halve", flush=True)
        return
    # Each connection waits delay() after every answer: aim its period (latency + delay) at
    # CONNECTIONS / target_rps, with the latency measured by a short probe at that rate.
    period_ms = CONNECTIONS * 1000.0 / target_rps
    probe = load.run(url, "transfer.lua", rig.load_users, seconds=2, delay_ms=period_ms)
    delay_ms = max(period_ms - (probe.p50_ms or 0.0), 1.0)
    t0 = _now(rig)
    result = load.run(url, "transfer.lua", rig.load_users, seconds=seconds, delay_ms=delay_ms)
    t1 = _now(rig)
    unsettled = _wait_settled(rig, 30.0)
    row = _one(
        rig,
        """SELECT count(*), percentile_cont(0.99) WITHIN GROUP (
                    ORDER BY extract(epoch FROM completed_at - created_at)) * 1000
             FROM transactions
            WHERE kind = 'transfer' AND status = 'completed' AND created_at BETWEEN %s AND %s""",
        (t0, t1),
    )
    report("half_load_post", result)
    print(f"half_load_target_rps {target_rps:.0f} (delay {delay_ms:.1f} ms per request)")
    p99 = "n/a" if row[1] is None else f"{row[1]:.0f}"
    print(f"accepted_to_completed_p99_ms {p99}  ({row[0]} completed transfers)")
    if unsettled:
        print(f"!! {unsettled} transfers still pending 30 s after the half-load run")
    print(end="", flush=True)


def _wait_settled(rig: ApiRig, timeout: float) -> int:
    """Until nothing is pending (bounded); the number still pending."""
    deadline = time.monotonic() + timeout
    while True:
        left = int(_one(rig, "SELECT count(*) FROM transactions WHERE status = 'pending'")[0])
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.25)


def _completed(rig: ApiRig) -> int:
    return int(_one(rig, "SELECT count(*) FROM transactions WHERE status = 'completed'")[0])


def _now(rig: ApiRig) -> datetime:
    value: datetime = _one(rig, "SELECT clock_timestamp()")[0]
    return value


def _one(rig: ApiRig, sql: LiteralString, params: tuple[Any, ...] = ()) -> tuple[Any, ...]:
    with psycopg.connect(rig.project_libpq(), autocommit=True) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None
    return tuple(row)


def _clear_bare_queue(rig: ApiRig) -> None:
    redis.Redis.from_url(rig.stack.redis_url).delete(bare_app.QUEUE)
