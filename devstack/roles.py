"""The application's database login for `make run`, the tests and the benchmarks.

Migrations run as the owner; the API, worker and beat connect as a LOGIN role that is a member of
`wallet_app`, the group migration 0010 grants the application's privileges to (no UPDATE, DELETE
or TRUNCATE on ledger entries and the audit log, no DDL). docker-compose does the same with
ops/postgres/app-login.sql.
"""

from __future__ import annotations

from typing import Any

from psycopg import errors, sql

APP_GROUP = "wallet_app"  # migrations/versions/0010_app_role.py


def ensure_app_login(conn: Any, name: str, password: str | None = None) -> None:
    """Create LOGIN role `name` (defaults: no other powers) with this password as a member of
    `wallet_app`, on an autocommit connection of a role that may create roles. The group is
    created here when the migrations have not yet, so the order of the two does not matter."""
    _create_role(conn, APP_GROUP, "NOLOGIN")
    _create_role(conn, name, "LOGIN")
    conn.execute(
        sql.SQL("ALTER ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)
        )
    )
    conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(APP_GROUP), sql.Identifier(name)))


def _create_role(conn: Any, name: str, login: str) -> None:
    if conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (name,)).fetchone():
        return
    try:
        conn.execute(sql.SQL("CREATE ROLE {} " + login).format(sql.Identifier(name)))
    except (errors.DuplicateObject, errors.UniqueViolation):
        pass  # created meanwhile by another run on the same server


def drop_login(conn: Any, name: str) -> None:
    """Drop a login `ensure_app_login` made (after the databases it used are gone)."""
    conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))
