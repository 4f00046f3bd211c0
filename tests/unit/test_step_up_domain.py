"""Step-up rules: which amount is in force, and what the connected wallet signs."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from app.domain.step_up import effective_amount, new_confirmation


def test_the_lower_of_the_platforms_and_the_users_own_amount_is_in_force() -> None:
    assert effective_amount(Decimal(100), None) == Decimal(100)
    assert effective_amount(Decimal(100), Decimal(30)) == Decimal(30)
    assert effective_amount(Decimal(0), Decimal(30)) == Decimal(30)  # no platform default
    assert effective_amount(Decimal(0), None) is None


def test_the_message_names_domain_amount_destination_transaction_signer_nonce_and_expiry() -> None:
    tx_id = uuid.uuid4()
    expires = datetime(2026, 11, 29, 6, 0, 0, 123456, tzinfo=UTC)
    first = new_confirmation(
        "wallet.example", tx_id, "transfer", Decimal("12.5"), "user x", "Signer1", expires
    )
    second = new_confirmation(
        "wallet.example", tx_id, "transfer", Decimal("12.5"), "user x", "Signer1", expires
    )
    assert first.message.splitlines() == [
        "wallet.example asks you to confirm a transfer:",
        "Amount: 12.500000 tokens",
        "To: user x",
        f"Transaction: {tx_id}",
        "Signer: Signer1",
        f"Nonce: {first.nonce}",
        "Expires: 2026-11-29T06:00:00Z",
    ]
    assert first.nonce != second.nonce and len(first.nonce) == 16
    assert first.stored()["message"] == first.message
    assert first.stored()["expires_at"] == "2026-11-29T06:00:00+00:00"
