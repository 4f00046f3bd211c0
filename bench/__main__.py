"""`make bench`: benchmarks print absolute figures and their ratio to a baseline measured in the
same run on the same machine."""

from __future__ import annotations

import argparse

from bench import low_balance, pgbench, settlement
from bench.stack import BenchStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--transfers", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker concurrency")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    parser.add_argument("--low-balance-wallets", type=int, default=1_000_000)
    parser.add_argument(
        "--only", choices=["settlement", "low-balance"], help="run one benchmark, not all"
    )
    args = parser.parse_args()

    stack = BenchStack()
    try:
        if args.only != "low-balance":
            _settlement(stack, args)
        if args.only != "settlement":
            _low_balance(stack, args.low_balance_wallets)
    finally:
        stack.close()


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
