"""`python -m chaos [--short] [--runs N] [--keep-logs]` (make chaos): exit 1 if any run fails."""

from __future__ import annotations

import argparse
import sys

from chaos.run import FULL, SHORT, run


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m chaos")
    parser.add_argument("--short", action="store_true", help="the short form make test runs")
    parser.add_argument("--runs", type=int, default=1, help="runs in a row; stops at a failure")
    parser.add_argument("--keep-logs", action="store_true", help="keep var/chaos/run-*/ logs")
    args = parser.parse_args(argv)
    for _ in range(args.runs):
        result = run(SHORT if args.short else FULL, keep_logs=args.keep_logs)
        for line in result.faults.log:
            print(f"  {line}")
        for failure in result.failures:
            print(f"  FAILED: {failure}")
        print(result.summary(), flush=True)
        if not result.passed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
