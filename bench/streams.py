"""`streams_api_p99_ratio`: GET /api/wallet p99 while 1,000 notification streams are open
(200 users × 5, held by bench/streams_client.py in its own process) ÷ its p99 without them.

Every wait is bounded: streams that do not open in time are counted as failed, wrk's timeouts
are reported, and the client process is stopped whatever happens.
"""

from __future__ import annotations

import json
import select
import subprocess
import sys
from typing import Any

from bench import load
from bench.api_stack import ApiRig
from bench.load import WrkResult, report
from bench.stack import ROOT

PER_USER = 5
OPEN_TIMEOUT = 90.0


def measure(rig: ApiRig, url: str, without: WrkResult, seconds: int) -> None:
    port = url.rsplit(":", 1)[1]
    client = subprocess.Popen(
        [sys.executable, "-m", "bench.streams_client", port, str(rig.stream_users), str(PER_USER)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        opened = _line(client, OPEN_TIMEOUT)
        if opened is None:
            print(f"!! streams: the client reported nothing within {OPEN_TIMEOUT:.0f} s")
            return
        print(f"streams_asked {opened['asked']}")
        print(f"streams_open {opened['opened']}  (opened in {opened['seconds']} s)")
        if opened["failed"]:
            print(f"!! streams failed to open: {opened['failed']}")
        print(end="", flush=True)
        with_streams = load.run(url, "wallet.lua", rig.load_users, seconds=seconds)
        assert client.stdin is not None
        client.stdin.close()
        held = _line(client, 30.0)
        if held is not None:
            print(
                f"streams_still_open_after_load {held['still_open']}"
                f"  (ended by the server: {held['ended_by_server']})"
            )
    finally:
        client.kill()
        client.wait(10)
    report("read_with_streams", with_streams)
    if with_streams.p99_ms is None or without.p99_ms is None:
        print("streams_api_p99_ratio n/a  (no successful GET /api/wallet under streams)")
    else:
        ratio = with_streams.p99_ms / without.p99_ms
        print(
            f"streams_api_p99_ratio {ratio:.2f}  "
            f"({with_streams.p99_ms:.1f} / {without.p99_ms:.1f} ms p99, {opened['opened']} streams)"
        )
    print(end="", flush=True)


def _line(proc: subprocess.Popen[str], timeout: float) -> dict[str, Any] | None:
    """The next JSON line the process writes, or None when it writes none within `timeout`."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        return None
    line = proc.stdout.readline()
    parsed: dict[str, Any] | None = json.loads(line) if line.strip() else None
    return parsed
