"""the application's role: `wallet_app` may read and write what the app needs, never rewrite history

Migrations run as the owner of the schema (MIGRATION_DATABASE_URL); the API, worker and beat
connect as a LOGIN role that is a member of the NOLOGIN group `wallet_app` (DATABASE_URL). An
owner can disable triggers, so the append-only triggers alone do not protect ledger entries and
the audit log from the application's credentials; privileges do:

- every table: SELECT, INSERT, UPDATE, DELETE — except `ledger_entries` and `audit_log` (SELECT,
  INSERT: append only) and `alembic_version` (SELECT). Never TRUNCATE, REFERENCES or TRIGGER.
- sequences: USAGE, SELECT; functions (`accept_transactions`, …): EXECUTE; schema: USAGE only
  (no CREATE), and the app owns nothing, so no ALTER, DROP, DISABLE TRIGGER or CREATE OR
  REPLACE of a trigger function.
- ALTER DEFAULT PRIVILEGES gives tables, sequences and functions that this owner creates later
  the same grants. A later migration that adds an append-only table must REVOKE UPDATE, DELETE
  on it from `wallet_app` itself.

`wallet_app` is created here when missing and the migrating role may create roles; otherwise
(a single-role setup whose owner cannot create roles) the grants are skipped with a warning and
the application keeps connecting as the owner. Roles belong to the whole server, so downgrade
revokes this database's grants and leaves the role.

Revision ID: 0010
Revises: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0007"
branch_labels = None
depends_on = None

APP_ROLE = "wallet_app"  # devstack/roles.py, ops/postgres/app-login.sql name it too
APPEND_ONLY = ("ledger_entries", "audit_log")

# Runs the grants only when the group exists by the end of it, so a single-role setup whose owner
# may not create roles still migrates.
UPGRADE = f"""
DO $$
DECLARE
    schema_name text := quote_ident(current_schema());
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        IF (SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user) THEN
            BEGIN
                CREATE ROLE {APP_ROLE} NOLOGIN;
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;  -- another database's migration created it meanwhile
            END;
        ELSE
            RAISE WARNING 'role {APP_ROLE} is missing and % may not create it: no grants; the application connects as the owner (single role)',
                current_user;
            RETURN;
        END IF;
    END IF;
    EXECUTE 'GRANT USAGE ON SCHEMA ' || schema_name || ' TO {APP_ROLE}';
    EXECUTE 'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ' || schema_name
        || ' TO {APP_ROLE}';
    REVOKE UPDATE, DELETE ON {", ".join(APPEND_ONLY)} FROM {APP_ROLE};
    REVOKE INSERT, UPDATE, DELETE ON alembic_version FROM {APP_ROLE};
    EXECUTE 'GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA ' || schema_name || ' TO {APP_ROLE}';
    EXECUTE 'GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ' || schema_name || ' TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || schema_name
        || ' GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || schema_name
        || ' GRANT USAGE, SELECT ON SEQUENCES TO {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || schema_name
        || ' GRANT EXECUTE ON FUNCTIONS TO {APP_ROLE}';
END
$$
"""

DOWNGRADE = f"""
DO $$
DECLARE
    schema_name text := quote_ident(current_schema());
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
        RETURN;
    END IF;
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || schema_name
        || ' REVOKE ALL ON TABLES FROM {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || schema_name
        || ' REVOKE ALL ON SEQUENCES FROM {APP_ROLE}';
    EXECUTE 'ALTER DEFAULT PRIVILEGES IN SCHEMA ' || schema_name
        || ' REVOKE ALL ON FUNCTIONS FROM {APP_ROLE}';
    EXECUTE 'REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ' || schema_name || ' FROM {APP_ROLE}';
    EXECUTE 'REVOKE ALL ON ALL SEQUENCES IN SCHEMA ' || schema_name || ' FROM {APP_ROLE}';
    EXECUTE 'REVOKE ALL ON ALL TABLES IN SCHEMA ' || schema_name || ' FROM {APP_ROLE}';
    EXECUTE 'REVOKE ALL ON SCHEMA ' || schema_name || ' FROM {APP_ROLE}';
END
$$
"""


def upgrade() -> None:
    op.execute(UPGRADE)


def downgrade() -> None:
    op.execute(DOWNGRADE)
