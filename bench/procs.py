"""Processes a benchmark starts: each in its own session (process group), so stopping one stops
its children too (gunicorn's workers, Celery's pool), on success, exceptions and Ctrl-C alike."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from bench.stack import ROOT


class Processes:
    """Owns every process it started; `close()` stops them all (newest first), each bounded."""

    def __init__(self) -> None:
        self._running: list[subprocess.Popen[str]] = []

    def start(
        self,
        argv: Sequence[str],
        env: dict[str, str],
        *,
        cwd: Path = ROOT,
        stderr_pipe: bool = False,
    ) -> subprocess.Popen[str]:
        proc = subprocess.Popen(
            list(argv),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE if stderr_pipe else subprocess.DEVNULL,
            text=True,
            start_new_session=True,
        )
        self._running.append(proc)
        return proc

    def stop(self, proc: subprocess.Popen[str], grace: float = 25.0) -> None:
        """SIGTERM the process group (SIGCONT first, in case it was paused), SIGKILL after
        `grace` seconds."""
        if proc in self._running:
            self._running.remove(proc)
        if proc.poll() is None:
            for sig in (signal.SIGCONT, signal.SIGTERM):
                _signal_group(proc, sig)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        _signal_group(proc, signal.SIGKILL)  # stragglers (children) of a finished leader
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        for proc in reversed(list(self._running)):
            self.stop(proc)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    try:
        os.killpg(proc.pid, sig)  # start_new_session: the group id is the leader's pid
    except ProcessLookupError:
        pass


def wait_http(url: str, proc: subprocess.Popen[str], timeout: float = 60.0) -> None:
    """Until `url` answers 200, the process exits, or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args!r} exited with {proc.returncode} before serving")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def wait_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60.0) -> None:
    """Until the process writes `needle` on stderr; its stderr is drained for its whole life so
    it never blocks on a full pipe."""
    seen = threading.Event()

    def watch() -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            if needle in line:
                seen.set()

    threading.Thread(target=watch, daemon=True).start()
    if not seen.wait(timeout):
        raise RuntimeError(f"{proc.args!r} did not print {needle!r} within {timeout:.0f} s")
