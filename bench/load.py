"""HTTP load with wrk (Debian package `wrk`) and the Lua scripts in bench/wrk/.

Only answers with a 2xx/3xx status count as throughput; wrk's non-2xx answers and socket errors
(timeouts included) are kept beside the figures and printed loudly by `report`.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent / "wrk"
MISSING = "wrk not found: apt-get install -y wrk"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}


@dataclass(frozen=True)
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int  # connect + read + write + timeout
    timeouts: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def ok_rps(self) -> float:
        """Answers with a 2xx/3xx status per second; errors never count."""
        return max(self.requests - self.non_2xx, 0) / self.seconds if self.seconds else 0.0

    @property
    def clean(self) -> bool:
        return self.non_2xx == 0 and self.socket_errors == 0 and self.requests > 0


def available() -> bool:
    return shutil.which("wrk") is not None


def write_users(path: Path, users: list[tuple[str, str]]) -> Path:
    """The users file the scripts read: one `<user id> <bearer token>` per line."""
    path.write_text("".join(f"{user_id} {token}\n" for user_id, token in users))
    return path


def run(
    url: str,
    script: str,
    users: Path,
    *,
    seconds: int,
    threads: int = 2,
    connections: int = 16,
    delay_ms: float = 0.0,
    timeout_s: int = 2,
) -> WrkResult:
    env = dict(
        os.environ,
        BENCH_WRK_DIR=str(SCRIPTS),
        BENCH_USERS=str(users),
        BENCH_RUN=secrets.token_hex(4),
        BENCH_DELAY_MS=f"{delay_ms:.3f}",
    )
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s", f"--timeout={timeout_s}s"]
    argv += ["--latency", "-s", str(SCRIPTS / script), url]
    out = subprocess.run(
        argv, env=env, capture_output=True, text=True, check=True, timeout=seconds + 60
    ).stdout
    return parse(out)


def parse(out: str) -> WrkResult:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", out)
    if not done:
        raise RuntimeError(f"unexpected wrk output:\n{out}")
    requests = int(done.group(1))
    seconds = float(done.group(2)) * _UNITS[done.group(3)] / 1000.0
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    counts = [int(n) for n in errors.groups()] if errors else [0, 0, 0, 0]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return WrkResult(
        requests=requests,
        seconds=seconds,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        socket_errors=sum(counts),
        timeouts=counts[3],
        p50_ms=_percentile(out, "50") if requests else None,
        p99_ms=_percentile(out, "99") if requests else None,
    )


def _percentile(out: str, which: str) -> float | None:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.MULTILINE)
    return float(match.group(1)) * _UNITS[match.group(2)] if match else None


def ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def report(name: str, result: WrkResult) -> None:
    """`<name>_rps`, `_p50_ms`, `_p99_ms`, and a loud line when anything failed."""
    print(f"{name}_rps {result.ok_rps:.0f}")
    print(f"{name}_p50_ms {ms(result.p50_ms)}")
    print(f"{name}_p99_ms {ms(result.p99_ms)}")
    if result.requests == 0:
        print(f"!! {name}: not one answer in {result.seconds:.0f} s (server saturated or stuck)")
    elif not result.clean:
        print(
            f"!! {name}: {result.non_2xx} non-2xx answers, {result.socket_errors} socket errors "
            f"({result.timeouts} timeouts) of {result.requests} requests; "
            "only 2xx answers count as throughput",
        )
    print(end="", flush=True)
