"""`python -m devstack run`: the whole system on one machine (what `make run` calls).

For each of DATABASE_URL / REDIS_URL that is unset, an embedded server is started with its data
under var/ (`DEVSTACK_VAR_DIR` to put it elsewhere); migrations run; then supervisord
(devstack/supervision.py) runs the Procfile's processes (API, worker, beat, Flower) and, unless
SOLANA_RPC_URL is set, the local Solana cluster, restarting any of them that exits. Ctrl-C or
SIGTERM stops everything this started, embedded servers included. A second run reuses var/.

The embedded PostgreSQL has two roles, as production should: migrations run as its superuser
(MIGRATION_DATABASE_URL, the owner), the processes connect as `wallet_app_user`, a member of
`wallet_app` (DATABASE_URL), which cannot rewrite ledger entries or the audit log. The
processes never see MIGRATION_DATABASE_URL.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from app.sealing import generate_key_spec
from devstack import supervision
from devstack.embedded import EmbeddedPostgres, EmbeddedRedis

ROOT = Path(__file__).resolve().parent.parent
VAR = Path(os.environ.get("DEVSTACK_VAR_DIR") or ROOT / "var").resolve()
APP_LOGIN = "wallet_app_user"


def _secret_file(name: str, make: str) -> str:
    path = VAR / name
    if not path.exists():
        path.write_text(make)
        path.chmod(0o600)
    return path.read_text().strip()


def run() -> int:
    VAR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(ROOT)
    env["DEVSTACK_VAR_DIR"] = str(VAR)  # the Procfile keeps beat's schedule there
    env.setdefault("APP_ENV", "development")
    env.setdefault("JWT_SECRET", _secret_file("jwt_secret", secrets.token_urlsafe(32)))
    env.setdefault(
        "FLOWER_BASIC_AUTH", _secret_file("flower_auth", f"admin:{secrets.token_urlsafe(12)}")
    )
    env.setdefault("WALLET_DATA_KEY", _secret_file("wallet_data_key", generate_key_spec()))
    env["API_PORT"] = env.get("PORT", "8000")
    if not env.get("PROMETHEUS_MULTIPROC_DIR"):  # every process's metrics, one /metrics
        metrics_dir = VAR / "prometheus"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    env.setdefault("FLOWER_PORT", "5555")
    # Locally, a newly connected address may receive withdrawals after a minute, not a day.
    env.setdefault("WITHDRAWAL_NEW_ADDRESS_COOLDOWN_SECONDS", "60")

    programs = supervision.procfile_commands(ROOT / "Procfile")
    stoppers: list[Callable[[], None]] = []
    try:
        if not env.get("DATABASE_URL"):
            postgres = EmbeddedPostgres(VAR / "postgres")
            stoppers.append(postgres.stop)
            postgres.ensure_database("wallet")
            postgres.ensure_app_login(APP_LOGIN)
            env["MIGRATION_DATABASE_URL"] = postgres.url("wallet")
            env["DATABASE_URL"] = postgres.url("wallet", user=APP_LOGIN)
        if not env.get("REDIS_URL"):
            port_file = VAR / "redis.port"
            preferred = int(port_file.read_text()) if port_file.exists() else None
            redis = EmbeddedRedis(VAR / "redis", port=preferred)
            stoppers.append(redis.stop)
            port_file.write_text(str(redis.port))
            env["REDIS_URL"] = redis.url
        if not env.get("SOLANA_RPC_URL"):
            programs = {"solana": _local_cluster(env), **programs}

        subprocess.run(
            [sys.executable, "-m", "alembic", "upgrade", "head"], cwd=ROOT, env=env, check=True
        )
        _write_stack_env(env)
        _banner(env)
        processes_env = {k: v for k, v in env.items() if k != "MIGRATION_DATABASE_URL"}
        # supervisord restarts a worker that exits; the watchdog one that hangs (watchdog.py).
        programs["watchdog"] = shlex.join([sys.executable, "-m", "devstack.watchdog"])
        conf = VAR / "supervisord.conf"
        conf.write_text(supervision.config(programs, directory=ROOT, var=VAR))
        supervisord = subprocess.Popen(
            [sys.executable, "-m", "supervisor.supervisord", "-c", str(conf)],
            cwd=ROOT,
            env=processes_env,
        )

        def forward(signum: int, _frame: FrameType | None) -> None:
            if supervisord.poll() is None:
                supervisord.send_signal(signum)

        signal.signal(signal.SIGTERM, forward)
        signal.signal(signal.SIGINT, forward)
        return supervisord.wait()
    finally:
        for stop in reversed(stoppers):
            stop()


def _local_cluster(env: dict[str, str]) -> str:
    """The command of the local Solana cluster (devstack/solana) on SOLANA_RPC_PORT (8899), state
    in var/solana. The app learns the mint and treasury from the cluster.json it writes, so on
    the first run the cluster is started once here to create them; then supervisord runs it."""
    port = env.get("SOLANA_RPC_PORT", "8899")
    state = VAR / "solana"
    command = [sys.executable, "-m", "devstack.solana", "--state-dir", str(state), "--port", port]
    if not (state / "cluster.json").exists():
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
        assert process.stdout is not None
        ready = process.stdout.readline()  # the cluster prints one line once it serves
        process.terminate()
        process.wait(10)
        if "ready" not in ready:
            raise RuntimeError(f"local Solana cluster failed to start: {ready!r}")
    info = json.loads((state / "cluster.json").read_text())
    env["SOLANA_RPC_URL"] = f"http://127.0.0.1:{port}"
    env.setdefault("TOKEN_MINT", info["mint"])
    env.setdefault("TREASURY_ADDRESS", info["treasury"])
    env.setdefault("TREASURY_KEYPAIR", info["treasury_keypair_path"])
    return shlex.join(command)


STACK_ENV = (  # the app's view: DATABASE_URL is the app role, the owner's URL stays out
    "APP_ENV",
    "DATABASE_URL",
    "REDIS_URL",
    "JWT_SECRET",
    "WALLET_DATA_KEY",
    "SOLANA_RPC_URL",
    "TOKEN_MINT",
    "TREASURY_ADDRESS",
    "TREASURY_KEYPAIR",
    "PROMETHEUS_MULTIPROC_DIR",
    "API_PORT",  # `make token ARGS="--link"` links to this stack's wallet page
)


def _write_stack_env(env: dict[str, str]) -> None:
    """var/stack.env: what CLI commands need to reach this stack (`make flask ARGS=…`)."""
    path = VAR / "stack.env"
    path.write_text(
        "".join(f"{name}={shlex.quote(env[name])}\n" for name in STACK_ENV if env.get(name))
    )
    path.chmod(0o600)


def _banner(env: dict[str, str]) -> None:
    api = f"http://127.0.0.1:{env['API_PORT']}"
    user, _, _ = env["FLOWER_BASIC_AUTH"].partition(":")
    print(
        f"""
  API        {api}   (docs {api}/api/docs, health {api}/readyz)
  Flower     http://127.0.0.1:{env["FLOWER_PORT"]}   (user {user!r}, password in var/flower_auth)
  Database   {env["DATABASE_URL"]}
  Migrations {env.get("MIGRATION_DATABASE_URL") or "(DATABASE_URL)"}
  Redis      {env["REDIS_URL"]}
  Solana     {env.get("SOLANA_RPC_URL")}   (mint {env.get("TOKEN_MINT")})
  Wallet     {api}/wallet   (sign in: make token ARGS="--link", open the printed link)
  A token:   make token [ARGS="UUID --role user|service|admin"]
  CLI:       make flask ARGS="ledger mint 1000"   (any `flask --app wsgi` command, this stack)
             make flask ARGS="dev fund ADDRESS AMOUNT"   (tokens for an external wallet)
""",
        flush=True,
    )


def main(argv: list[str]) -> int:
    if argv[1:2] == ["run"]:
        return run()
    print("usage: python -m devstack run", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
