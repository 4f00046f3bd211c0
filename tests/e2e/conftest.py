"""A real gunicorn (several worker processes) against the test database and Redis."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import pytest

from devstack.embedded import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn(**settings: str) -> Iterator[str]:
    """gunicorn.conf.py with two worker processes and these extra environment settings; yields
    the base URL once /healthz answers."""
    port = free_port()
    metrics_dir = tempfile.mkdtemp(prefix="wallet-metrics-")
    env = dict(
        os.environ,
        API_PORT=str(port),
        WEB_CONCURRENCY="2",
        PYTHONPATH=str(ROOT),
        PROMETHEUS_MULTIPROC_DIR=metrics_dir,
        **settings,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py", "wsgi:app"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(f"{url}/healthz", timeout=1)
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    process.stderr.read().decode() if process.stderr else ""
                ) from None
            time.sleep(0.1)
    # Keep reading its log: a pipe nobody reads fills up (64 KiB) and then blocks every worker
    # that writes a line (the browser tests make enough requests to get there).
    threading.Thread(target=_drain, args=(process.stderr,), daemon=True).start()
    try:
        yield url
    finally:
        process.terminate()
        process.wait(20)
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _drain(stream: IO[bytes] | None) -> None:
    if stream is not None:
        for _ in stream:
            pass


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    with gunicorn(SSE_HEARTBEAT_SECONDS="1", RATE_LIMIT_WALLET_AUTH="4/minute") as url:
        yield url
