"""`make run` supervises its processes with supervisord: one that exits comes back, the others
keep running, and SIGINT (Ctrl-C) stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from devstack import supervision
from tests.support import wait_until

ROOT = Path(__file__).resolve().parents[2]


def test_every_procfile_process_is_supervised_and_restarted() -> None:
    commands = supervision.procfile_commands(ROOT / "Procfile")
    assert set(commands) == {"web", "worker", "beat", "flower"}
    text = supervision.config(commands, directory=ROOT, var=ROOT / "var" / "test")
    for name in commands:
        section = text.split(f"[program:{name}]\n", 1)[1].split("\n\n", 1)[0]
        assert "autorestart=true" in section
        assert "stopasgroup=true" in section and "killasgroup=true" in section


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def supervised(tmp_path: Path) -> Any:
    sleeper = f"{sys.executable} -c 'import time; time.sleep(600)'"
    conf = tmp_path / "supervisord.conf"
    conf.write_text(
        supervision.config({"one": sleeper, "two": sleeper}, directory=tmp_path, var=tmp_path)
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )

    def pid(name: str) -> int:
        return supervision.program_pid(tmp_path, name)

    try:
        yield process, pid
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_a_killed_process_is_restarted_while_the_others_keep_running_and_sigint_stops_all(
    supervised: Any,
) -> None:
    supervisord, pid = supervised
    first, other = wait_until(lambda: pid("one") and pid("two") and (pid("one"), pid("two")), 20)

    os.kill(first, signal.SIGKILL)
    restarted = wait_until(lambda: pid("one") not in (0, first) and pid("one"), 20)

    assert _alive(restarted) and not _alive(first)
    assert pid("two") == other

    supervisord.send_signal(signal.SIGINT)
    assert supervisord.wait(30) == 0
    assert not _alive(restarted) and not _alive(other)
