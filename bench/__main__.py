"""`make bench`: benchmarks print absolute figures and their ratio to a baseline measured in the
same run on the same machine."""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
from pathlib import Path

from bench import api, api_stack, compare, history, load, low_balance, pgbench, settlement
from bench.stack import BenchStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--transfers", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker concurrency")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--low-balance-wallets", type=int, default=1_000_000)
    parser.add_argument("--api-seconds", type=int, default=10, help="length of each wrk run")
    parser.add_argument(
        "--only",
        choices=["settlement", "low-balance", "api", "history"],
        help="run one benchmark, not all",
    )
    parser.add_argument(
        "--compare-servers",
        action="store_true",
        help="only compare gunicorn worker models for the project API (one line each)",
    )
    args = parser.parse_args()
    # A plain `kill` of the bench also stops what it started (the finally blocks run).
    signal.signal(signal.SIGTERM, _exit_on_sigterm)

    stack = BenchStack()
    try:
        if args.compare_servers:
            _api(stack, args.api_seconds, compare_servers=True)
            return
        if args.only in (None, "settlement"):
            _settlement(stack, args)
        if args.only in (None, "low-balance"):
            _low_balance(stack, args.low_balance_wallets)
        if args.only in (None, "api"):
            _api(stack, args.api_seconds)
        if args.only in (None, "history"):
            _history(stack)
    finally:
        stack.close()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    print("!! bench stopped by SIGTERM: stopping what it started", file=sys.stderr, flush=True)
    raise SystemExit(128 + signum)


def _api(stack: BenchStack, seconds: int, *, compare_servers: bool = False) -> None:
    if not load.available():
        print(load.MISSING)
        print("!! API benchmarks skipped: wrk is not installed", flush=True)
        return
    with tempfile.TemporaryDirectory(prefix="bench-api-") as tmp:
        rig = api_stack.build(stack, Path(tmp))
        try:
            if compare_servers:
                compare.run(rig, seconds)
            else:
                api.run(rig, seconds)
        finally:
            rig.close()


def _history(stack: BenchStack) -> None:
    result = history.read_latency(stack)
    long, short = int(result["long"]), int(result["short"])
    print(f"read_history GET /api/wallet, a wallet with {long} transactions vs one with {short}")
    print(f"read_history_{long}_p50_ms {result['long_p50_ms']:.2f}")
    print(f"read_history_{short}_p50_ms {result['short_p50_ms']:.2f}")
    print(f"read_history_{long}_p99_ms {result['long_p99_ms']:.2f}")
    print(f"read_history_{short}_p99_ms {result['short_p99_ms']:.2f}")
    ratio = result["long_p50_ms"] / result["short_p50_ms"]
    print(f"read_history_flat_ratio {ratio:.2f}", flush=True)


def _settlement(stack: BenchStack, args: argparse.Namespace) -> None:
    tps = pgbench.tpcb_tps(stack, clients=8, seconds=args.pgbench_seconds)
    print(f"pgbench_tpcb_tps {tps:.0f}", flush=True)
    result = settlement.settle_tps(
        stack, users=args.users, count=args.transfers, concurrency=args.workers
    )
    print(
        f"settle_backlog {args.transfers} transfers among {args.users} users, "
        f"celery concurrency {args.workers}"
    )
    print(f"settle_seconds {result['seconds']:.2f}")
    print(f"settle_completed {result['completed']:.0f}")
    print(f"settle_tps {result['tps']:.0f}")
    print(f"settle_ratio_vs_pgbench {result['tps'] / tps:.2f}", flush=True)


def _low_balance(stack: BenchStack, wallets: int) -> None:
    result = low_balance.scan_seconds(stack, wallets=wallets)
    print(f"low_balance_wallets {wallets}")
    print(f"low_balance_scan_seconds {result['seconds']:.3f}")
    print(f"low_balance_alerts_fired {result['alerted']:.0f}")
    print(f"low_balance_wallets_armed {result['armed']:.0f}")
    print(f"low_balance_rerun_seconds {result['rerun_seconds']:.3f}")
    print(f"low_balance_rerun_alerts {result['rerun_alerted']:.0f}")
    print(f"low_balance_steady_seconds {result['steady_seconds']:.3f}")
    print(f"low_balance_baseline_full_scan_seconds {result['baseline_seconds']:.3f}")
    print(f"low_balance_baseline_wallets_below {result['below']:.0f}")
    baseline = result["baseline_seconds"]
    print(f"low_balance_ratio_vs_full_scan {result['seconds'] / baseline:.2f}")
    print(
        f"low_balance_steady_ratio_vs_full_scan {result['steady_seconds'] / baseline:.2f}",
        flush=True,
    )


if __name__ == "__main__":
    main()
