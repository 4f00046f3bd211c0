"""Operator and developer commands: `flask --app wsgi users …`, `ledger …`."""

from __future__ import annotations

import json
import os
import uuid
from datetime import timedelta
from urllib.parse import urlencode, urlparse

import click
from flask import Flask
from flask.cli import AppGroup
from solders.pubkey import Pubkey

from app.api.auth import TOKEN_ROLES, TokenRules, issue_token
from app.bootstrap import wiring
from app.chain.rpc import ChainRejectedError, ChainUnavailableError, JsonRpc
from app.domain.accounts import is_reserved
from app.domain.money import AmountError, parse_amount, to_wire
from app.sealing import generate_key_spec
from app.services import browser_sessions, invariants, keys, transfers

users = AppGroup("users", help="Users and tokens.")


@users.command("token")
@click.argument("user_id", required=False, type=click.UUID)
@click.option("--role", type=click.Choice(sorted(TOKEN_ROLES)), default="user", show_default=True)
@click.option("--hours", type=int, default=12, show_default=True, help="Token lifetime.")
@click.option(
    "--link",
    is_flag=True,
    help="Print a one-time login link for the wallet page instead (valid two minutes, single "
    "use; the session it starts lasts --hours).",
)
@click.option(
    "--base-url",
    default=lambda: f"http://127.0.0.1:{os.environ.get('API_PORT', '8000')}",
    show_default="http://127.0.0.1:$API_PORT",
    help="Where the wallet page is served (with --link).",
)
def token(user_id: uuid.UUID | None, role: str, hours: int, link: bool, base_url: str) -> None:
    """Print a bearer token for USER_ID (a new random user when omitted), or with --link a
    one-time login link: the link carries a short-lived code, never the token itself."""
    if user_id is not None and is_reserved(user_id):  # the API would refuse it (403)
        raise click.BadParameter("reserved for system accounts", param_hint="USER_ID")
    config = wiring().config
    ttl = timedelta(hours=hours)
    if not 0 < ttl.total_seconds() <= config.jwt_max_lifetime_seconds:
        raise click.BadParameter(
            f"between 1 and JWT_MAX_LIFETIME_SECONDS ({config.jwt_max_lifetime_seconds} s)",
            param_hint="--hours",
        )
    if link:
        if role == "service":
            raise click.BadParameter(
                "the wallet page is for user and admin roles", param_hint="--role"
            )
        code = browser_sessions.issue_login_code(
            wiring().redis,
            user_id or uuid.uuid4(),
            role,
            int(ttl.total_seconds()),
        )
        click.echo(f"{base_url.rstrip('/')}/wallet/login?{urlencode({'code': code})}")
        return
    rules = TokenRules.of(config)
    click.echo(issue_token(config.jwt_secret, user_id or uuid.uuid4(), role, ttl, rules))


ledger = AppGroup("ledger", help="Ledger operations.")


@ledger.command("mint")
@click.argument("amount")
@click.option("--note", default="issuance", show_default=True)
def mint(amount: str, note: str) -> None:
    """Issue AMOUNT new tokens into the platform wallet (from the issuance account)."""
    try:
        value = parse_amount(amount)
    except AmountError as exc:
        raise click.BadParameter(str(exc), param_hint="AMOUNT") from None
    if value <= 0:
        raise click.BadParameter("must be greater than zero", param_hint="AMOUNT")
    w = wiring()
    tx_id = transfers.mint(w, w.system, value, note)
    click.echo(f"issuance {tx_id} of {to_wire(value)} recorded (settles through the pipeline)")


@ledger.command("check")
def check() -> None:
    """Verify the ledger invariants; exit 1 on any violation."""
    with wiring().db.transaction() as session:
        violations = invariants.check(session)
        warning = invariants.history_warning(session)
    for v in violations:
        click.echo(f"VIOLATION {v.rule} {v.subject}: {v.detail}", err=True)
    if warning:
        click.echo(f"WARNING {warning}", err=True)
    if violations:
        raise SystemExit(1)
    click.echo("ledger ok")


dev = AppGroup("dev", help="Development helpers (local Solana cluster only).")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


@dev.command("fund")
@click.argument("address")
@click.argument("amount")
@click.option("--sol", default="1", show_default=True, help="SOL to airdrop for fees.")
def fund(address: str, amount: str, sol: str) -> None:
    """Airdrop SOL and mint AMOUNT tokens to ADDRESS's associated token account."""
    url = wiring().config.solana_rpc_url
    if urlparse(url).hostname not in LOOPBACK:
        raise click.ClickException(f"refusing: {url} is not a local cluster")
    try:
        Pubkey.from_string(address.removeprefix("sol:"))
        tokens = parse_amount(amount)
    except (ValueError, AmountError) as exc:
        raise click.BadParameter(str(exc)) from None
    rpc = JsonRpc(url, retries=0)
    try:
        signature = rpc.call(
            "devstack_fund",
            {"owner": address.removeprefix("sol:"), "sol": sol, "tokens": to_wire(tokens)},
        )
    except ChainRejectedError as exc:
        raise click.ClickException(
            f"refusing: {url} is not the local devstack cluster ({exc})"
        ) from None
    except ChainUnavailableError as exc:
        raise click.ClickException(f"cluster unavailable: {exc}") from None
    click.echo(f"funded {address} with {to_wire(tokens)} tokens and {sol} SOL: {signature}")


keys_group = AppGroup("keys", help="Encryption keys for data at rest (WALLET_DATA_KEY).")


@keys_group.command("rotate")
def rotate_keys() -> None:
    """Re-seal wallet data under the first (current) key of WALLET_DATA_KEY."""
    adapters = wiring()
    count = keys.rotate(adapters.db, adapters.keyring)
    click.echo(f"re-sealed {count} value(s) under key {adapters.keyring.current!r}")


@keys_group.command("generate")
def generate_key() -> None:
    """Print a new key entry to put first in WALLET_DATA_KEY."""
    click.echo(generate_key_spec())


@keys_group.command("seal")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
def seal_file(path: str) -> None:
    """Print PATH (e.g. the treasury keypair JSON) sealed, for TREASURY_KEYPAIR=sealed:<…>."""
    adapters = wiring()
    with open(path) as handle:
        sealed = adapters.keyring.seal({"content": handle.read()})
    click.echo("sealed:" + json.dumps(sealed, separators=(",", ":")))


def register(app: Flask) -> None:
    app.cli.add_command(users)
    app.cli.add_command(ledger)
    app.cli.add_command(dev)
    app.cli.add_command(keys_group)
