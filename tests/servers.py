"""The servers of the integration and end-to-end tiers: real PostgreSQL and Redis (a fresh
database per run), the local Solana cluster and a webhook receiver.

TEST_DATABASE_URL / TEST_REDIS_URL name servers to use (a fresh database is created on that
PostgreSQL server; the Redis database is flushed, so give a dedicated one). When unset, embedded
servers are started under var/test/ and stopped at the end.

Two roles, as in production: migrations run as TEST_DATABASE_URL's role (the owner); the app, the
worker and every `db` fixture connect as a login of this run that is a member of `wallet_app`
(migration 0010), which may not rewrite ledger entries or the audit log. `owner_db` is the
owner's connection, for tests that must corrupt data the app role cannot touch.
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import psycopg
import redis as redis_lib
from sqlalchemy.engine import make_url

from tests.support import JWT_SECRET

ROOT = Path(__file__).resolve().parent.parent
WEBHOOK_SECRET = "whsec-test-" + secrets.token_hex(16)


class Servers:
    def __init__(self) -> None:
        self._stoppers: list[Callable[[], None]] = []
        self.dbname = f"wallet_test_{secrets.token_hex(4)}"
        base = os.environ.get("TEST_DATABASE_URL")
        if base:
            self.server_url = make_url(base).set(drivername="postgresql+psycopg")
        else:
            from devstack.embedded import EmbeddedPostgres

            postgres = EmbeddedPostgres(ROOT / "var" / "test" / "postgres")
            self._stoppers.append(postgres.stop)
            self.server_url = make_url(postgres.url("postgres"))
        self.redis_url = os.environ.get("TEST_REDIS_URL") or self._embedded_redis()
        self.create_database(self.dbname)
        self.owner_url = self.url_for(self.dbname)  # migrations
        self.app_user = f"{self.dbname}_app"
        self.app_password = secrets.token_urlsafe(16)
        self.database_url = (  # the app: a login in `wallet_app`, made by `create_app_login`
            make_url(self.owner_url)
            .set(username=self.app_user, password=self.app_password)
            .render_as_string(hide_password=False)
        )
        self.solana = self.start_solana()

    def _embedded_redis(self) -> str:
        from devstack.embedded import EmbeddedRedis

        server = EmbeddedRedis(ROOT / "var" / "test" / "redis", persist=False)
        self._stoppers.append(server.stop)
        return server.url

    def url_for(self, dbname: str) -> str:
        return self.server_url.set(database=dbname).render_as_string(hide_password=False)

    def _admin(self) -> psycopg.Connection[Any]:
        url = self.server_url.set(drivername="postgresql", database="postgres")
        return psycopg.connect(url.render_as_string(hide_password=False), autocommit=True)

    def create_database(self, dbname: str) -> None:
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{dbname}"')

    def drop_database(self, dbname: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')

    def create_app_login(self) -> None:
        from devstack.roles import ensure_app_login

        with self._admin() as conn:
            ensure_app_login(conn, self.app_user, self.app_password)

    def start_solana(self) -> Any:
        """The local Solana cluster, blocks advanced by the tests themselves (slot_ms=0)."""
        import shutil

        from devstack.solana import LocalCluster

        state = ROOT / "var" / "test" / f"solana-{secrets.token_hex(3)}"
        cluster = LocalCluster(state, port=0, slot_ms=0, finalize_after=32).start()

        def stop() -> None:
            cluster.stop()
            shutil.rmtree(state, ignore_errors=True)

        self._stoppers.append(stop)
        return cluster

    def close(self) -> None:
        try:
            self.drop_database(self.dbname)
            from devstack.roles import drop_login

            with self._admin() as conn:
                drop_login(conn, self.app_user)
        finally:
            for stop in reversed(self._stoppers):
                stop()


_servers: Servers | None = None


def servers() -> Servers:
    assert _servers is not None
    return _servers


@dataclass(frozen=True)
class ReceivedWebhook:
    headers: dict[str, str]  # lower-case names
    body: str


@dataclass(frozen=True)
class Stall:
    """A programmed answer: wait this long, then answer 200 (to provoke client timeouts)."""

    seconds: float


class WebhookReceiver:
    """The webhook endpoint of the whole test session (WEBHOOK_URL points here, so every
    notification of the suite is delivered to it). Records each POST and answers 200, or the
    next programmed answer for the notification id or its user (and kind)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._requests: list[ReceivedWebhook] = []
        self._plans: dict[str, list[int | Stall]] = {}
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                receiver._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/webhooks"

    def program(
        self,
        answers: list[int | Stall],
        *,
        notification_id: int | None = None,
        user_id: uuid.UUID | None = None,
        kind: str | None = None,
    ) -> None:
        """Answer the next requests for this notification (or user, optionally one kind) with
        `answers` in order, then 200 again."""
        key = f"id:{notification_id}" if notification_id is not None else f"user:{user_id}:{kind}"
        with self._lock:
            self._plans[key] = list(answers)

    def received(self, notification_id: int) -> list[ReceivedWebhook]:
        with self._lock:
            return [
                r for r in self._requests if r.headers.get("x-webhook-id") == str(notification_id)
            ]

    def _answer(self, request: ReceivedWebhook) -> int | Stall:
        try:
            body = json.loads(request.body)
        except ValueError:
            body = {}
        keys = [
            f"id:{request.headers.get('x-webhook-id')}",
            f"user:{body.get('user_id')}:{body.get('kind')}",
            f"user:{body.get('user_id')}:None",
        ]
        with self._lock:
            self._requests.append(request)
            for key in keys:
                if self._plans.get(key):
                    return self._plans[key].pop(0)
        return 200

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0)).decode()
        headers = {name.lower(): value for name, value in handler.headers.items()}
        answer = self._answer(ReceivedWebhook(headers, body))
        if isinstance(answer, Stall):
            time.sleep(answer.seconds)
            answer = 200
        try:
            handler.send_response(answer)
            handler.send_header("Content-Length", "0")
            handler.end_headers()
        except OSError:
            pass  # the client gave up (timeout)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


_webhook_receiver: WebhookReceiver | None = None


def start() -> None:
    """Start the servers and point the environment (the app's configuration) at them."""
    global _servers
    _servers = Servers()
    os.environ["APP_ENV"] = "development"  # the suite's secrets are real, but it is not production
    os.environ["DATABASE_URL"] = _servers.database_url
    os.environ["REDIS_URL"] = _servers.redis_url
    os.environ["JWT_SECRET"] = JWT_SECRET
    os.environ["SWEEPER_STALE_SECONDS"] = "0.5"
    # Generous limits for the suite (tests/integration/test_rate_limits.py uses tight ones).
    os.environ["RATE_LIMIT_DEFAULT"] = "100000/minute"
    os.environ["RATE_LIMIT_MONEY"] = "100000/minute"
    os.environ["RATE_LIMIT_WALLET_AUTH"] = "100000/minute"
    os.environ["RATE_LIMIT_AUTH_FAILURES"] = "100000/minute"
    # A deposit viewed is checked on the chain every time (test_deposits.py tests the limit).
    os.environ["DEPOSIT_VIEW_CHECK_SECONDS"] = "0"
    os.environ["WALLET_DATA_KEY"] = "test:" + base64.b64encode(secrets.token_bytes(32)).decode()
    os.environ["SOLANA_RPC_URL"] = _servers.solana.url
    os.environ["TOKEN_MINT"] = str(_servers.solana.mint)
    os.environ["TREASURY_ADDRESS"] = str(_servers.solana.treasury_keypair.pubkey())
    os.environ["TREASURY_KEYPAIR"] = str(_servers.solana.state_dir / "treasury.json")
    global _webhook_receiver
    _webhook_receiver = WebhookReceiver()
    os.environ["WEBHOOK_URL"] = _webhook_receiver.url
    os.environ["WEBHOOK_SECRET"] = WEBHOOK_SECRET
    redis_lib.Redis.from_url(_servers.redis_url).flushdb()
    migrate(_servers.owner_url, "head")
    _servers.create_app_login()


def stop() -> None:
    if _servers is not None:
        _servers.close()
    if _webhook_receiver is not None:
        _webhook_receiver.close()


def webhook_receiver() -> WebhookReceiver:
    assert _webhook_receiver is not None
    return _webhook_receiver


def migrate(database_url: str, revision: str, *, down: bool = False) -> None:
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig(str(ROOT / "alembic.ini"))
    cfg.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    cfg.attributes["configure_logger"] = False
    (command.downgrade if down else command.upgrade)(cfg, revision)
