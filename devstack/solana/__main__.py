"""CLI: ``python -m devstack.solana --state-dir var/solana --port 8899``, until SIGINT/SIGTERM."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from types import FrameType

from .cluster import LocalCluster


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m devstack.solana",
        description="Local Solana JSON-RPC cluster backed by LiteSVM",
    )
    parser.add_argument("--state-dir", default="var/solana", help="keys, journal, cluster.json")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8899, help="0 picks a free port")
    parser.add_argument("--slot-ms", type=int, default=400, help="block time; 0 = manual only")
    parser.add_argument("--finalize-after", type=int, default=32, help="blocks until finalized")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    cluster = LocalCluster(
        args.state_dir,
        host=args.host,
        port=args.port,
        slot_ms=args.slot_ms,
        finalize_after=args.finalize_after,
    )
    with cluster:
        print(
            f"solana devstack ready at {cluster.url} mint={cluster.mint} "
            f"treasury={cluster.treasury_keypair.pubkey()} state={cluster.state_dir}",
            flush=True,
        )
        stop.wait()


if __name__ == "__main__":
    main()
