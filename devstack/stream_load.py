"""`python -m devstack.stream_load`: GET /api/wallet latency with and without many open
notification streams (issue 9: 1,000 streams from ~200 users must not more than double its p99).

Starts the API (gunicorn.conf.py, the real worker model) on DATABASE_URL / REDIS_URL (a migrated
database; `set -a; . var/stack.env` after `make run` gives both), then:
1. `wrk` GETs /api/wallet from `--readers` users for `--duration` s: requests/s and p99;
2. opens `--streams` streams from `--users` users with asyncio and keeps them open;
3. the same `wrk` run again, with the streams open; reports how many are still open after it.
A development tool: the figures depend on the machine and whatever else runs on it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from app.api.auth import issue_token
from devstack.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Streams:
    """Open SSE streams held by an asyncio loop in a thread."""

    statuses: dict[int, int] = field(default_factory=dict)
    open_now: int = 0
    bytes_read: int = 0
    ready: threading.Event = field(default_factory=threading.Event)
    stop: threading.Event = field(default_factory=threading.Event)

    async def _one(self, port: int, token: str) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            (
                "GET /api/notifications/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Authorization: Bearer {token}\r\nAccept: text/event-stream\r\n\r\n"
            ).encode()
        )
        await writer.drain()
        status = int((await reader.readline()).split()[1])
        self.statuses[status] = self.statuses.get(status, 0) + 1
        if status == 200:
            self.open_now += 1
            try:
                while not self.stop.is_set():
                    chunk = await reader.read(4096)
                    if not chunk:
                        break
                    self.bytes_read += len(chunk)
            finally:
                self.open_now -= 1
        writer.close()

    async def _all(self, port: int, tokens: list[str]) -> None:
        tasks = []
        for i, token in enumerate(tokens):
            tasks.append(asyncio.create_task(self._one(port, token)))
            if i % 50 == 49:
                await asyncio.sleep(0.05)  # a ramp, not a SYN flood
        while sum(self.statuses.values()) < len(tokens):
            await asyncio.sleep(0.05)
        self.ready.set()
        while not self.stop.is_set():
            await asyncio.sleep(0.2)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def start(self, port: int, tokens: list[str]) -> None:
        threading.Thread(target=lambda: asyncio.run(self._all(port, tokens)), daemon=True).start()


def _wrk(url: str, tokens: list[str], duration: int, connections: int) -> tuple[float, float]:
    script = Path(tempfile.mkdtemp()) / "tokens.lua"
    script.write_text(
        "tokens = {" + ",".join(f'"{t}"' for t in tokens) + "}\n"
        "request = function()\n"
        '  wrk.headers["Authorization"] = "Bearer " .. tokens[math.random(#tokens)]\n'
        "  return wrk.format(nil)\nend\n"
    )
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{duration}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    shutil.rmtree(script.parent, ignore_errors=True)
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99_ms = float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    if "Non-2xx" in out:
        print(out, file=sys.stderr)
    return rps, p99_ms


def _workers(master: int) -> list[int]:
    pids = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == master:
            pids.append(int(stat.parent.name))
    return pids


def _cpu_seconds_and_rss_mb(pids: list[int]) -> tuple[float, float]:
    """CPU time used so far and resident memory, summed over `pids` (Linux /proc)."""
    ticks, rss_pages = 0, 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime + stime
        rss_pages += int(fields[21])
    return ticks / os.sysconf("SC_CLK_TCK"), rss_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=1000)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--readers", type=int, default=100)
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--worker-class", default="", help="override gunicorn.conf.py's")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        print("needs wrk: apt-get install -y wrk", file=sys.stderr)
        return 2
    secret = secrets.token_urlsafe(32)
    port = free_port()
    env = dict(
        os.environ,
        API_PORT=str(port),
        APP_ENV="development",
        JWT_SECRET=secret,
        PYTHONPATH=str(ROOT),
        RATE_LIMIT_DEFAULT="10000000/minute",
        SSE_MAX_STREAMS_PER_USER=str(max(5, -(-args.streams // args.users))),
    )
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"]
    if args.worker_class:
        command[3:3] = ["--worker-class", args.worker_class]
    quiet = None if os.environ.get("STREAM_LOAD_VERBOSE") else subprocess.DEVNULL
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=quiet, stderr=quiet)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=1)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("the API did not start") from None
                time.sleep(0.2)
        readers = [issue_token(secret, uuid.uuid4()) for _ in range(args.readers)]
        for token in readers:  # create the wallets before measuring
            urllib.request.urlopen(
                urllib.request.Request(
                    f"{base}/api/wallet", headers={"Authorization": f"Bearer {token}"}
                )
            ).read()
        _wrk(f"{base}/api/wallet", readers, 2, args.connections)  # warm up every worker
        rps_0, p99_0 = _wrk(f"{base}/api/wallet", readers, args.duration, args.connections)
        print(f"no streams:    {rps_0:8.0f} req/s   p99 {p99_0:7.1f} ms", flush=True)
        if not args.streams:
            return 0

        workers = _workers(server.pid)
        _, rss_0 = _cpu_seconds_and_rss_mb(workers)
        users = [issue_token(secret, uuid.uuid4()) for _ in range(args.users)]
        streams = Streams()
        streams.start(port, [users[i % len(users)] for i in range(args.streams)])
        if not streams.ready.wait(120):
            raise RuntimeError(f"streams did not open: {streams.statuses}")
        time.sleep(2)
        print(f"streams: {streams.statuses} (HTTP status: count), open {streams.open_now}")
        cpu_a, _ = _cpu_seconds_and_rss_mb(workers)
        time.sleep(args.duration)
        cpu_b, rss_1 = _cpu_seconds_and_rss_mb(workers)
        print(
            f"idle streams cost {100 * (cpu_b - cpu_a) / args.duration:.1f}% of one core; "
            f"API memory {rss_0:.0f} -> {rss_1:.0f} MB"
        )
        rps_1, p99_1 = _wrk(f"{base}/api/wallet", readers, args.duration, args.connections)
        print(f"{streams.open_now:4d} streams:  {rps_1:8.0f} req/s   p99 {p99_1:7.1f} ms")
        print(f"streams_api_p99_ratio {p99_1 / p99_0:.2f}   req/s ratio {rps_1 / rps_0:.2f}")
        streams.stop.set()
    finally:
        server.terminate()
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
