"""Sensitive wallet data is sealed at rest and keys rotate."""

import json
import uuid

from sqlalchemy import text

from app.sealing import Keyring, generate_key_spec
from app.services import chain_accounts, keys
from tests.support import connect_by_signing


def _raw_data(db, user) -> str:
    with db.transaction() as session:
        return str(
            session.scalar(text("SELECT data::text FROM wallets WHERE user_id = :u"), {"u": user})
        )


def test_the_connection_proof_is_sealed_never_plaintext(client, db, wiring) -> None:
    user = uuid.uuid4()
    _, message, signature = connect_by_signing(client, user)
    raw = _raw_data(db, user)
    assert signature not in raw and "wants you to sign in" not in raw
    sealed = json.loads(raw)["connection_proof"]
    assert sealed["kid"] == wiring.keyring.current
    assert wiring.keyring.unseal(sealed)["signature"] == signature
    assert wiring.keyring.unseal(sealed)["message"] == message


def test_rotate_reseals_under_the_new_key_and_old_keys_can_then_go(client, db, wiring, app) -> None:
    user = uuid.uuid4()
    _, _, signature = connect_by_signing(client, user)
    new_spec = generate_key_spec()
    rotated = Keyring(f"{new_spec},{wiring.config.wallet_data_key}")
    assert keys.rotate(wiring.db, rotated) >= 1
    sealed = json.loads(_raw_data(db, user))["connection_proof"]
    assert sealed["kid"] == rotated.current
    assert Keyring(new_spec).unseal(sealed)["signature"] == signature  # the old key is not needed
    assert keys.rotate(wiring.db, rotated) == 0  # idempotent
    # back under the test key for the rest of the suite
    keys.rotate(wiring.db, Keyring(f"{wiring.config.wallet_data_key},{new_spec}"))


def test_the_cli_rotates(app) -> None:
    result = app.test_cli_runner().invoke(args=["keys", "rotate"])
    assert result.exit_code == 0 and "re-sealed" in result.output


def test_a_sealed_treasury_key_opens_with_the_data_key(app, config, solana, tmp_path) -> None:
    sealed = (
        app.test_cli_runner()
        .invoke(args=["keys", "seal", str(solana.state_dir / "treasury.json")])
        .output.strip()
    )
    assert sealed.startswith("sealed:") and "[" not in sealed
    treasury = chain_accounts.treasury(config.replace(treasury_keypair=sealed))
    assert treasury.pubkey() == solana.treasury_keypair.pubkey()
