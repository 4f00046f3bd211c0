"""The treasury's private key stays with the chain worker: the public API knows its address only
(issue 10 item 12)."""

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from solders.keypair import Keypair

from app import create_app
from app.services import chain_accounts
from tests.support import auth

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def keyless_api(config):
    """An API whose TREASURY_KEYPAIR names a file that does not exist."""
    api = create_app(config.replace(treasury_keypair="/nonexistent/treasury.json"))
    api.testing = True
    yield api
    api.extensions["wallet"].db.dispose()


def test_a_deposit_request_names_the_treasury_without_opening_its_key(keyless_api, solana) -> None:
    response = keyless_api.test_client().post(
        "/api/wallet/deposits", json={"amount": "3"}, headers=auth(uuid.uuid4())
    )
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["recipient"] == str(solana.treasury_keypair.pubkey())


def test_the_wsgi_app_is_configured_without_the_treasury_key() -> None:
    """Even when the environment has TREASURY_KEYPAIR, `gunicorn wsgi:app` drops it."""
    assert os.environ.get("TREASURY_KEYPAIR")
    probe = "import wsgi; print(repr(wsgi.app.extensions['wallet'].config.treasury_keypair))"
    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "''"


def test_the_worker_refuses_a_key_that_is_not_the_treasury_address(config) -> None:
    assert str(chain_accounts.treasury(config).pubkey()) == config.treasury_address
    other = config.replace(treasury_address=str(Keypair().pubkey()))
    with pytest.raises(RuntimeError, match="not the key of TREASURY_ADDRESS"):
        chain_accounts.treasury(other)
