"""The schema is owned by Alembic: it upgrades and downgrades cleanly and matches the models."""

import re
from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from app.domain.accounts import Role, WalletKind
from app.domain.transactions import Kind, Stage, Status
from app.models import Base
from tests.servers import migrate, servers


@pytest.fixture
def scratch_database() -> Iterator[str]:
    name = "wallet_migrations_" + __import__("secrets").token_hex(4)
    servers().create_database(name)
    yield servers().url_for(name)
    servers().drop_database(name)


def test_upgrade_head_then_downgrade_base_leaves_an_empty_schema(scratch_database: str) -> None:
    migrate(scratch_database, "head")
    engine = create_engine(scratch_database)
    try:
        tables = set(inspect(engine).get_table_names())
        assert {
            "users",
            "wallets",
            "transactions",
            "ledger_entries",
            "idempotency_keys",
            "audit_log",
            "notifications",
        } <= tables
        migrate(scratch_database, "base", down=True)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        with engine.connect() as connection:  # no grant to wallet_app is left behind
            assert connection.scalar(text("SELECT count(*) FROM pg_default_acl")) == 0
            schema_acl = connection.scalar(
                text("SELECT nspacl::text FROM pg_namespace WHERE nspname = current_schema()")
            )
            assert "wallet_app" not in (schema_acl or "")
        migrate(scratch_database, "head")
        assert "wallets" in inspect(engine).get_table_names()
    finally:
        engine.dispose()


def test_models_match_the_migrated_schema(db) -> None:
    with db.engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


@pytest.mark.parametrize(
    ("table", "column", "values"),
    [
        ("users", "role", Role),
        ("wallets", "kind", WalletKind),
        ("transactions", "kind", Kind),
        ("transactions", "status", Status),
        ("transactions", "stage", Stage),
    ],
)
def test_the_migrated_check_lists_are_the_domain_enums(db, table, column, values) -> None:
    """alembic's comparison does not read CHECK constraints: the lists are compared here."""
    with db.engine.connect() as connection:
        definitions = connection.scalars(
            text(
                "SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid = CAST(:table AS regclass) AND contype = 'c'"
            ),
            {"table": table},
        ).all()
    [listing] = [d for d in definitions if re.search(rf"\({column} = ANY|\b{column} IN\b", d)]
    assert set(re.findall(r"'([a-z_]+)'::text", listing)) == {v.value for v in values}
