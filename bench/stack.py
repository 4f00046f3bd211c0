"""Servers for benchmarks: BENCH_DATABASE_URL / BENCH_REDIS_URL, or embedded ones (var/bench).

Databases are migrated as BENCH_DATABASE_URL's role (the owner); the processes the README starts
(API, worker) connect as this run's login in `wallet_app`, as in production (`app_url`)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

import psycopg
from sqlalchemy.engine import URL, make_url

from devstack.embedded import EmbeddedPostgres, EmbeddedRedis
from devstack.roles import drop_login, ensure_app_login

ROOT = Path(__file__).resolve().parent.parent


class BenchStack:
    def __init__(self) -> None:
        self._stoppers: list[Callable[[], None]] = []
        base = os.environ.get("BENCH_DATABASE_URL")
        if base:
            self.server: URL = make_url(base).set(drivername="postgresql+psycopg")
        else:
            postgres = EmbeddedPostgres(ROOT / "var" / "bench" / "postgres")
            self._stoppers.append(postgres.stop)
            self.server = make_url(postgres.url("postgres"))
        redis_url = os.environ.get("BENCH_REDIS_URL")
        if not redis_url:
            redis = EmbeddedRedis(ROOT / "var" / "bench" / "redis", persist=False)
            self._stoppers.append(redis.stop)
            redis_url = redis.url
        self.redis_url = redis_url
        self._databases: list[str] = []
        self._app_login = f"bench_app_{secrets.token_hex(3)}"
        self._app_password = secrets.token_urlsafe(16)
        self._app_login_made = False

    def fresh_database(self, prefix: str) -> str:
        name = f"{prefix}_{secrets.token_hex(3)}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self._databases.append(name)
        return name

    def url(self, dbname: str) -> str:
        """The owner's URL (migrations, seeding)."""
        return self.server.set(database=dbname).render_as_string(hide_password=False)

    def app_url(self, dbname: str) -> str:
        """The application role's URL (run after migrating `dbname`)."""
        if not self._app_login_made:
            with self._admin() as conn:
                ensure_app_login(conn, self._app_login, self._app_password)
            self._app_login_made = True
        url = self.server.set(
            database=dbname, username=self._app_login, password=self._app_password
        )
        return url.render_as_string(hide_password=False)

    def libpq(self, dbname: str) -> str:
        return self.server.set(drivername="postgresql", database=dbname).render_as_string(
            hide_password=False
        )

    def _admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.libpq("postgres"), autocommit=True)

    def close(self) -> None:
        with self._admin() as conn:
            for name in self._databases:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if self._app_login_made:
                drop_login(conn, self._app_login)
        for stop in reversed(self._stoppers):
            stop()
