"""Supervision for `make run`: supervisord (PyPI `supervisor`) runs the Procfile's processes and
the local Solana cluster, and restarts any of them that exits while the others keep running.

Why supervisord and not honcho: honcho stops every process as soon as one exits, so one crashed
worker (e.g. kombu's Redis reconnect bug, see celeryconfig.py) took the whole stack down.

Restart policy (supervisord's own): a process that exits after running `STARTSECS` is restarted
at once; one that dies sooner is retried with a linear backoff (1 s, 2 s, 3 s … between tries),
so a crash loop never spins. Every exit and restart is logged by supervisord on the terminal
(`exited: worker (terminated by SIGKILL; not expected)`, `spawned: 'worker' with pid …`).
Ctrl-C (SIGINT) or SIGTERM to supervisord stops every program, each as a process group (gunicorn
workers, the Celery pool), SIGKILL after `STOPWAITSECS`.

`.venv/bin/supervisorctl -c var/supervisord.conf status|restart NAME|pid NAME` talks to it.
"""

from __future__ import annotations

import getpass
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

STARTSECS = 3
# The wait grows by a second per failed start (n seconds before try n+1) and resets once the
# program has run STARTSECS; supervisord gives up (FATAL) only after this many failed starts in a
# row, i.e. never while anyone waits.
STARTRETRIES = 100_000
STOPWAITSECS = 25


def procfile_commands(procfile: Path) -> dict[str, str]:
    """name → command line, in file order (comments and blank lines skipped)."""
    commands: dict[str, str] = {}
    for line in procfile.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, _, command = line.partition(":")
            commands[name.strip()] = command.strip()
    return commands


def config(programs: Mapping[str, str], *, directory: Path, var: Path) -> str:
    """A supervisord.conf running each `programs` command (a shell command line: `$VAR`s are
    expanded from supervisord's environment when the program starts, so no secret is written
    into the file). Programs listed first start first."""
    log_dir = var / "log"
    log_dir.mkdir(parents=True, exist_ok=True)
    sections = [
        _section(
            "supervisord",
            user=getpass.getuser(),  # whoever runs make run: no privilege change, no warning
            nodaemon="true",  # in the foreground: make run's terminal, Ctrl-C stops it
            logfile=log_dir / "supervisord.log",  # and echoed on the terminal (nodaemon)
            logfile_maxbytes="10MB",
            logfile_backups="2",
            pidfile=var / "supervisord.pid",
            childlogdir=log_dir,
            loglevel="info",
        ),
        _section("unix_http_server", file=var / "supervisor.sock", chmod="0700"),
        _section(
            "rpcinterface:supervisor",
            **{"supervisor.rpcinterface_factory": "supervisor.rpcinterface:make_main_rpcinterface"},
        ),
        _section("supervisorctl", serverurl=f"unix://{var / 'supervisor.sock'}"),
    ]
    for priority, (name, command) in enumerate(programs.items(), start=1):
        sections.append(
            _section(
                f"program:{name}",
                # exec: the program itself (not a shell) is the supervised pid.
                command=f"/bin/sh -c {shlex.quote('exec ' + command)}",
                directory=directory,
                priority=str(priority * 10),
                autostart="true",
                autorestart="true",
                startsecs=str(STARTSECS),
                startretries=str(STARTRETRIES),
                stopsignal="TERM",
                stopwaitsecs=str(STOPWAITSECS),
                stopasgroup="true",
                killasgroup="true",
                # The programs' own output goes to the terminal, as under honcho.
                stdout_logfile="/dev/stdout",
                stdout_logfile_maxbytes="0",
                redirect_stderr="true",
            )
        )
    return "\n".join(sections)


def _section(title: str, **values: object) -> str:
    # supervisord's ini values interpolate %(name)s: a literal % must be doubled.
    lines = [f"[{title}]"] + [f"{k}={str(v).replace('%', '%%')}" for k, v in values.items()]
    return "\n".join(lines) + "\n"


def program_pid(var: Path, name: str) -> int:
    """The pid of program `name` under the supervisord whose socket is in `var`; 0 while it is
    not running (or supervisord does not answer)."""
    import http.client
    import xmlrpc.client

    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{var / 'supervisor.sock'}")
    rpc = xmlrpc.client.ServerProxy("http://localhost", transport)
    try:
        info: Any = rpc.supervisor.getProcessInfo(name)
    except (OSError, http.client.HTTPException, xmlrpc.client.Fault):
        return 0
    return int(info["pid"]) if info["statename"] == "RUNNING" else 0
