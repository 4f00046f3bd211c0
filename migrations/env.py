"""Alembic environment. The database URL comes from `-x url=…`, the config's
`sqlalchemy.url` (set by tests and benchmarks), MIGRATION_DATABASE_URL (the owner of the schema),
or DATABASE_URL (a single role: the application then owns the tables it should only use)."""

from __future__ import annotations

import logging
import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from app.models import Base

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logger", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = Base.metadata


def _url() -> str:
    url = context.get_x_argument(as_dictionary=True).get("url") or config.get_main_option(
        "sqlalchemy.url"
    )
    if url:
        return url
    if os.environ.get("MIGRATION_DATABASE_URL"):
        return os.environ["MIGRATION_DATABASE_URL"]
    if os.environ.get("APP_ENV") != "development":
        logging.getLogger("alembic.env").warning(
            "MIGRATION_DATABASE_URL is unset: migrating as DATABASE_URL's role, so the application"
            " connects as the owner of the tables and could bypass the append-only triggers on"
            " ledger_entries and audit_log (README: Database roles)"
        )
    return os.environ["DATABASE_URL"]


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connectable = config.attributes.get("connection")
    if connectable is not None:
        context.configure(connection=connectable, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = create_engine(_url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
