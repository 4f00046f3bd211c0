"""The servers of the API benchmarks, on the BenchStack's PostgreSQL and Redis:

- the project API started the README's way (`gunicorn --config gunicorn.conf.py wsgi:app`, so the
  bench follows whatever server gunicorn.conf.py chooses; GUNICORN_CMD_ARGS overrides it for
  comparisons), as the application role, on a fresh migrated database with funded users and rate
  limits far above the load;
- the Celery worker with the Procfile's `worker` command and the same environment;
- the bare baseline app (bench/bare_app.py) in its own fresh database.
"""

from __future__ import annotations

import os
import secrets
import shlex
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

from sqlalchemy import text

from app.api.auth import issue_token
from app.bootstrap import bootstrap
from app.config import Config
from bench import bare_app, load
from bench.procs import Processes, wait_http, wait_line
from bench.settlement import migrate, prepare
from bench.stack import ROOT, BenchStack
from devstack.embedded import free_port

BIN = Path(sys.executable).parent
UNLIMITED = "1000000000/minute"


@dataclass
class ApiRig:
    """Everything the API benchmarks run against; `close()` stops every process it started."""

    stack: BenchStack
    tmp: Path
    procs: Processes = field(default_factory=Processes)
    project_db: str = ""
    bare_db: str = ""
    env: dict[str, str] = field(default_factory=dict)
    users: list[str] = field(default_factory=list)  # every funded user id
    load_users: Path = Path()  # the first 100: "<user id> <JWT>"
    stream_users: Path = Path()  # all of them: "<user id> <JWT>"
    bare_users: Path = Path()  # the first 100: "<user id> <user id>" (the bare app's "token")

    def project_libpq(self) -> str:
        return self.stack.libpq(self.project_db)

    def close(self) -> None:
        self.procs.close()


def build(stack: BenchStack, tmp: Path, *, users: int = 200, load_users: int = 100) -> ApiRig:
    """Fresh databases for the project (migrated, `users` funded users through mint and rewards,
    drained) and for the bare app (seeded with the same user ids), and the users files."""
    rig = ApiRig(stack=stack, tmp=tmp)
    rig.project_db = stack.fresh_database("bench_api")
    url = stack.url(rig.project_db)
    migrate(url)
    wiring = bootstrap(Config.from_env({}).replace(database_url=url, redis_url=stack.redis_url))
    try:
        prepare(wiring, users, 0)
        with wiring.db.transaction() as session:
            rig.users = [
                str(u)
                for u in session.execute(
                    text(
                        "SELECT w.user_id FROM wallets w JOIN users u ON u.id = w.user_id"
                        " WHERE u.role = 'user' AND w.kind = 'user' ORDER BY w.user_id"
                    )
                ).scalars()
            ]
    finally:
        wiring.db.dispose()
    secret = secrets.token_urlsafe(32)
    metrics = tmp / "prometheus"
    metrics.mkdir()
    rig.env = dict(
        os.environ,
        PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        PYTHONPATH=str(ROOT),
        APP_ENV="development",
        DATABASE_URL=stack.app_url(rig.project_db),
        REDIS_URL=stack.redis_url,
        JWT_SECRET=secret,
        PROMETHEUS_MULTIPROC_DIR=str(metrics),
        RATE_LIMIT_DEFAULT=UNLIMITED,
        RATE_LIMIT_MONEY=UNLIMITED,
        RATE_LIMIT_WALLET_AUTH=UNLIMITED,
    )
    tokens = [
        (u, issue_token(secret, uuid.UUID(u), "user", ttl=timedelta(hours=6))) for u in rig.users
    ]
    rig.load_users = load.write_users(tmp / "load_users", tokens[:load_users])
    rig.stream_users = load.write_users(tmp / "stream_users", tokens)
    rig.bare_users = load.write_users(tmp / "bare_users", [(u, u) for u in rig.users[:load_users]])
    rig.bare_db = stack.fresh_database("bench_bare")
    bare_app.create_schema(stack.libpq(rig.bare_db), rig.users)
    return rig


def start_project(rig: ApiRig, cmd_args: str | None = None) -> tuple[str, subprocess.Popen[str]]:
    """The API as the README starts it; `cmd_args` replaces GUNICORN_CMD_ARGS when given."""
    port = free_port()
    env = dict(rig.env, API_HOST="127.0.0.1", API_PORT=str(port))
    if cmd_args is not None:
        env["GUNICORN_CMD_ARGS"] = cmd_args
    proc = rig.procs.start([str(BIN / "gunicorn"), "--config", "gunicorn.conf.py", "wsgi:app"], env)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc)
    return base, proc


def start_worker(rig: ApiRig) -> subprocess.Popen[str]:
    """The Procfile's `worker` command (its `celery` resolved in this virtualenv)."""
    lines = (ROOT / "Procfile").read_text().splitlines()
    command = next(line.split(":", 1)[1] for line in lines if line.startswith("worker:"))
    proc = rig.procs.start(shlex.split(command), rig.env, stderr_pipe=True)
    wait_line(proc, " ready.")
    return proc


def start_bare(rig: ApiRig) -> tuple[str, subprocess.Popen[str]]:
    """4 sync gunicorn workers, run from an empty folder so no gunicorn.conf.py applies."""
    port = free_port()
    env = {k: v for k, v in rig.env.items() if k != "GUNICORN_CMD_ARGS"}
    env.update(BARE_DATABASE_URL=rig.stack.libpq(rig.bare_db), BARE_REDIS_URL=rig.stack.redis_url)
    folder = Path(tempfile.mkdtemp(dir=rig.tmp))
    argv = [str(BIN / "gunicorn"), "-w", "4", "-k", "sync", "-b", f"127.0.0.1:{port}"]
    proc = rig.procs.start([*argv, "bench.bare_app:app"], env, cwd=folder)
    base = f"http://127.0.0.1:{port}"
    wait_http(f"{base}/healthz", proc)
    return base, proc
