"""Each configuration variable is declared once (app/config.py); the README's table is generated
from the declarations and must not drift from them."""

from __future__ import annotations

from dataclasses import fields

from app.config import PROCESS_SETTINGS, Config, markdown_table
from devstack.config_docs import README, table_in


def test_the_readme_table_is_the_generated_one() -> None:
    assert table_in(README.read_text()) == markdown_table(), "run `make config-docs`"


def test_every_variable_is_declared_once_with_help() -> None:
    names = [f.metadata["env"] for f in fields(Config)] + [d.env for d in PROCESS_SETTINGS]
    assert len(names) == len(set(names))
    assert all(f.metadata["help"] for f in fields(Config))


def test_from_env_reads_each_declared_variable_with_its_type() -> None:
    config = Config.from_env(
        {"SETTLEMENT_SHARDS": "3", "MAX_TRANSFER_AMOUNT": "12.5", "SSE_CATCH_UP_SECONDS": "0.5"}
    )
    assert config.settlement_shards == 3
    assert str(config.max_transfer_amount) == "12.5"
    assert config.sse_catch_up_seconds == 0.5
    assert Config.from_env({}) == Config()
