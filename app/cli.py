"""Operator and developer commands: `flask --app wsgi users …`, `ledger …`."""

from __future__ import annotations

import uuid
from datetime import timedelta

import click
from flask import Flask, current_app
from flask.cli import AppGroup

from app.api.auth import TOKEN_ROLES, issue_token

users = AppGroup("users", help="Users and tokens.")


@users.command("token")
@click.argument("user_id", required=False, type=click.UUID)
@click.option("--role", type=click.Choice(sorted(TOKEN_ROLES)), default="user", show_default=True)
@click.option("--hours", type=int, default=12, show_default=True, help="Token lifetime.")
def token(user_id: uuid.UUID | None, role: str, hours: int) -> None:
    """Print a bearer token for USER_ID (a new random user when omitted)."""
    secret = current_app.extensions["wallet"].config.jwt_secret
    click.echo(issue_token(secret, user_id or uuid.uuid4(), role, timedelta(hours=hours)))


def register(app: Flask) -> None:
    app.cli.add_command(users)
