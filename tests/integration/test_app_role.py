"""The application's database role cannot rewrite history.

The API, worker and beat connect as a login that is a member of `wallet_app` (migration 0010):
no UPDATE, DELETE or TRUNCATE on ledger entries and the audit log, no ownership (so no ALTER
TABLE … DISABLE TRIGGER, no replacing the trigger function), no DDL. The append-only triggers
still hold for the owner (test_audit.py, test_ledger_invariants.py); here the refusals come from
privileges, before any trigger runs.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.services import invariants
from tests.support import fund

REFUSED_TO_THE_APP = (
    "UPDATE ledger_entries SET amount = 0",
    "DELETE FROM ledger_entries",
    "TRUNCATE ledger_entries CASCADE",
    "UPDATE audit_log SET action = 'x'",
    "DELETE FROM audit_log",
    "TRUNCATE audit_log",
    "ALTER TABLE ledger_entries DISABLE TRIGGER ledger_entries_append_only",
    "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "DROP TRIGGER audit_log_append_only ON audit_log",
    "CREATE OR REPLACE FUNCTION refuse_change() RETURNS trigger LANGUAGE plpgsql"
    " AS $$ BEGIN RETURN NULL; END $$",
    "SET session_replication_role = replica",
    "ALTER TABLE wallets DROP CONSTRAINT ck_wallets_balance_non_negative",
    "CREATE TABLE app_made (id int)",
    "UPDATE alembic_version SET version_num = '0001'",
    # transactions reference them without foreign keys (migration 0016)
    "DELETE FROM wallets",
    "DELETE FROM users",
    # ledger entries reference it without foreign keys (migration 0019)
    "DELETE FROM transactions",
)


def _refusal(db: Any, statement: str) -> DBAPIError | None:
    """Run `statement` as the app and roll back whatever happened; the error, if refused."""
    with db.engine.connect() as connection:
        try:
            connection.execute(text(statement))
        except DBAPIError as exc:
            return exc
        finally:
            connection.rollback()
    return None


@pytest.mark.parametrize("statement", REFUSED_TO_THE_APP)
def test_the_app_role_is_refused_by_privilege(db: Any, statement: str) -> None:
    refused = _refusal(db, statement)
    assert refused is not None, f"the app role may run: {statement}"
    assert getattr(refused.orig, "sqlstate", None) == "42501"  # insufficient_privilege
    # Refused by the role's privileges, not (only) by the append-only trigger.
    assert "append-only" not in str(refused.orig)


def test_the_app_connects_as_a_role_that_owns_nothing_and_is_not_a_superuser(db: Any) -> None:
    with db.engine.connect() as connection:
        role = connection.execute(
            text(
                "SELECT r.rolname, r.rolsuper, r.rolcreaterole, r.rolbypassrls,"
                " pg_has_role(current_user, 'wallet_app', 'USAGE')"
                " FROM pg_roles r WHERE r.rolname = current_user"
            )
        ).one()
        owned = connection.execute(
            text(
                "SELECT c.relname FROM pg_class c"
                " WHERE c.relnamespace = current_schema()::regnamespace"
                " AND pg_has_role(current_user, c.relowner, 'USAGE')"
                " UNION ALL SELECT p.proname FROM pg_proc p"
                " WHERE p.pronamespace = current_schema()::regnamespace"
                " AND pg_has_role(current_user, p.proowner, 'USAGE')"
            )
        ).all()
    assert role[1:] == (False, False, False, True), role
    assert owned == []


@pytest.mark.usefixtures("worker")
def test_the_app_may_append_to_history_but_not_rewrite_it(db: Any, app: Any) -> None:
    fund(app, uuid.uuid4(), "1")  # ledger entries and audit entries, written as the app role
    with db.engine.connect() as connection:
        privileges = connection.execute(
            text(
                "SELECT t, p, has_table_privilege(t, p) FROM unnest(ARRAY['ledger_entries',"
                " 'audit_log']) t, unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE',"
                " 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p"
            )
        ).all()
    granted = {(table, privilege) for table, privilege, has in privileges if has}
    assert granted == {
        ("ledger_entries", "SELECT"),
        ("ledger_entries", "INSERT"),
        ("audit_log", "SELECT"),
        ("audit_log", "INSERT"),
    }


def test_a_table_a_later_migration_creates_is_usable_by_the_app(db: Any, owner_db: Any) -> None:
    """ALTER DEFAULT PRIVILEGES: the owner's future tables and sequences need no grant of their
    own (an append-only one must revoke UPDATE and DELETE itself)."""
    with owner_db.transaction() as session:
        session.execute(text("CREATE TABLE later_table (id bigserial PRIMARY KEY, note text)"))
    try:
        with db.transaction() as session:
            session.execute(text("INSERT INTO later_table (note) VALUES ('a')"))
            session.execute(text("UPDATE later_table SET note = 'b'"))
            assert session.scalar(text("SELECT note FROM later_table")) == "b"
            session.execute(text("DELETE FROM later_table"))
        refused = _refusal(db, "DROP TABLE later_table")
        assert refused is not None and getattr(refused.orig, "sqlstate", None) == "42501"
    finally:
        with owner_db.transaction() as session:
            session.execute(text("DROP TABLE later_table"))


def test_the_ledger_check_warns_only_when_its_role_could_rewrite_history(
    app: Any, db: Any, owner_db: Any
) -> None:
    with db.transaction() as session:
        assert invariants.history_warning(session) is None
    with owner_db.transaction() as session:  # a single-role setup
        warning = invariants.history_warning(session)
    assert warning is not None and "ledger_entries, audit_log" in warning
    result = app.test_cli_runner().invoke(args=["ledger", "check"])
    assert "WARNING" not in result.output
