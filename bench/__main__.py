"""`make bench`: benchmarks print absolute figures and their ratio to a baseline measured in the
same run on the same machine."""

from __future__ import annotations

import argparse

from bench import pgbench, settlement
from bench.stack import BenchStack


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench")
    parser.add_argument("--transfers", type=int, default=50_000)
    parser.add_argument("--users", type=int, default=1_000)
    parser.add_argument("--workers", type=int, default=2, help="Celery worker concurrency")
    parser.add_argument("--pgbench-seconds", type=int, default=15)
    args = parser.parse_args()

    stack = BenchStack()
    try:
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
    finally:
        stack.close()


if __name__ == "__main__":
    main()
