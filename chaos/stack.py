"""The system under chaos: `python -m devstack run` (what `make run` runs: supervisord with the
API, worker, beat, Flower and the local Solana cluster) against a PostgreSQL and a Redis this
suite owns, so it can crash and restart them."""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import psutil
import psycopg

from devstack import supervision
from devstack.embedded import EmbeddedPostgres, EmbeddedRedis, free_port
from devstack.roles import drop_login, ensure_app_login

ROOT = Path(__file__).resolve().parent.parent
CHAOS_VAR = ROOT / "var" / "chaos"
# What the stack must not inherit from a caller (e.g. the test session's own servers).
_INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "USER", "XDG_RUNTIME_DIR")


class ChaosStack:
    def __init__(self) -> None:
        run_id = secrets.token_hex(3)
        self.var = CHAOS_VAR / f"run-{run_id}"
        self.var.mkdir(parents=True)
        self.postgres = EmbeddedPostgres(CHAOS_VAR / "postgres")  # reused: initdb once
        self.dbname = f"chaos_{run_id}"
        self.app_login = f"chaos_app_{run_id}"
        self.postgres.ensure_database(self.dbname)
        with psycopg.connect(self.postgres.libpq_url("postgres"), autocommit=True) as conn:
            ensure_app_login(conn, self.app_login)
        self.redis = EmbeddedRedis(self.var / "redis", persist=True)  # AOF, as make run
        self.port = free_port()
        self.env = {name: os.environ[name] for name in _INHERITED if name in os.environ}
        self.env.update(
            DEVSTACK_VAR_DIR=str(self.var),
            DATABASE_URL=self.postgres.url(self.dbname, user=self.app_login),
            MIGRATION_DATABASE_URL=self.postgres.url(self.dbname),
            REDIS_URL=self.redis.url,
            PORT=str(self.port),
            FLOWER_PORT=str(free_port()),
            SOLANA_RPC_PORT=str(free_port()),
            WEB_CONCURRENCY="2",  # a 2-core machine
            LOG_LEVEL="WARNING",
            # The suite measures recovery, not the rate limits or fraud rules.
            RATE_LIMIT_DEFAULT="1000000/minute",
            RATE_LIMIT_MONEY="1000000/minute",
            FRAUD_VELOCITY_COUNT="1000000",
            FRAUD_VELOCITY_AMOUNT="1000000000",
            WITHDRAWAL_NEW_ADDRESS_COOLDOWN_SECONDS="0",
        )
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = (self.var / "stack.log").open("wb")
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 180.0) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "devstack", "run"],
            cwd=ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self._process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the stack did not start; see {self.var / 'stack.log'}")
            time.sleep(0.5)
        while not self.solana_healthy():
            if time.monotonic() > deadline:
                raise RuntimeError("the local Solana cluster did not start")
            time.sleep(0.5)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=3) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def stack_env(self) -> dict[str, str]:
        """var/stack.env of this stack: what CLI commands need."""
        values = dict(self.env)
        for line in (self.var / "stack.env").read_text().splitlines():
            name, _, quoted = line.partition("=")
            values[name] = shlex.split(quoted)[0] if quoted else ""
        values["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{values.get('PATH', '')}"
        values["PYTHONPATH"] = str(ROOT)
        return values

    @property
    def jwt_secret(self) -> str:
        return (self.var / "jwt_secret").read_text().strip()

    def flask(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flask", "--app", "wsgi", *args],
            cwd=ROOT,
            env=self.stack_env,
            capture_output=True,
            text=True,
            check=check,
            timeout=120,
        )

    # The processes supervisord runs.
    def pid(self, program: str) -> int:
        return supervision.program_pid(self.var, program)

    def pool_pids(self) -> list[int]:
        main = self.pid("worker")
        if not main:
            return []
        try:
            return [child.pid for child in psutil.Process(main).children()]
        except psutil.Error:
            return []

    @property
    def solana_url(self) -> str:
        return f"http://127.0.0.1:{self.env['SOLANA_RPC_PORT']}"

    def rpc(self, method: str, params: list[Any] | None = None) -> Any:
        body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": params or []})
        request = urllib.request.Request(
            self.solana_url, body.encode(), {"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            reply = json.loads(response.read())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["result"]

    def solana_healthy(self) -> bool:
        try:
            return bool(self.rpc("getHealth") == "ok")
        except (OSError, RuntimeError, ValueError):
            return False

    def owner_connection(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self.postgres.libpq_url(self.dbname), autocommit=True)

    def close(self, *, keep_logs: bool = False) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)  # devstack → supervisord stops them all
            try:
                self._process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self._process.pid, signal.SIGKILL)
                self._process.wait(10)
        self._log.close()
        self.redis.stop()
        try:
            self.postgres.drop_database(self.dbname)
            with psycopg.connect(self.postgres.libpq_url("postgres"), autocommit=True) as conn:
                drop_login(conn, self.app_login)
        finally:
            self.postgres.stop()
        if not keep_logs:
            shutil.rmtree(self.var, ignore_errors=True)
