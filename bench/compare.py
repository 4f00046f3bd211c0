"""`--compare-servers`: the project API under several gunicorn worker models (GUNICORN_CMD_ARGS
over gunicorn.conf.py), one line each: POST /api/wallet/transfer and GET /api/wallet with wrk
-t2 -c16. The Celery worker is not running, so only the request path is compared."""

from __future__ import annotations

import importlib.util
import os
import runpy

from bench import api_stack, load
from bench.api_stack import ApiRig
from bench.load import WrkResult
from bench.stack import ROOT

# Compared after the README's server as gunicorn.conf.py configures it (`_models`).
OTHER_MODELS = [
    "-k sync -w 4",
    "-k gthread -w 4 --threads 8",
    "-k gthread -w 2 --threads 16",
    "-k gevent -w 4 --worker-connections 1000",
    # Keep-alive connections stay with the gevent worker that accepted them, and one greedy
    # accept loop can take most of them; without keep-alive every request is accepted anew by
    # whichever worker is free, with SO_REUSEPORT the kernel spreads them over the workers.
    "-k gevent -w 4 --worker-connections 1000 --keep-alive 0",
    "-k gevent -w 4 --worker-connections 1000 --reuse-port",
]
_ONLY = os.environ.get("BENCH_MODELS")  # "a|b": compare only these (for quick A/B runs)


def run(rig: ApiRig, seconds: int) -> None:
    print(f"{'server':<42} {'POST req/s':>10} {'p99 ms':>8} {'GET req/s':>10} {'p99 ms':>8}")
    for model in _ONLY.split("|") if _ONLY else _models():
        if "gevent" in model and importlib.util.find_spec("gevent") is None:
            print(f"{model:<42} skipped: gevent is not installed", flush=True)
            continue
        url, proc = api_stack.start_project(rig, cmd_args=model)
        try:
            for script in ("transfer.lua", "wallet.lua"):
                load.run(url, script, rig.load_users, seconds=1)  # warm up
            post = load.run(url, "transfer.lua", rig.load_users, seconds=seconds)
            get = load.run(url, "wallet.lua", rig.load_users, seconds=seconds)
        finally:
            rig.procs.stop(proc)
        print(f"{model:<42} {_cell(post)} {_cell(get)}", flush=True)


def _models() -> list[str]:
    """The configured server first (read when comparing, not whenever `bench` is imported)."""
    chosen = runpy.run_path(str(ROOT / "gunicorn.conf.py"))
    configured = (
        f"-k {chosen['worker_class']} -w {chosen['workers']}"
        f" --worker-connections {chosen['worker_connections']}"
    )
    return [configured, *OTHER_MODELS]


def _cell(result: WrkResult) -> str:
    cell = f"{result.ok_rps:>10.0f} {load.ms(result.p99_ms):>8}"
    if not result.clean:
        cell += f" !!{result.non_2xx} non-2xx/{result.socket_errors} socket errors"
    return cell
