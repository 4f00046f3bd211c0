"""Step-up confirmation of high-value money movements — pure rules.

A transfer or withdrawal at or above the step-up amount waits (stage `awaiting_confirmation`)
until the user's connected external wallet signs a message naming what moves where: the amount,
the recipient or destination, the transaction id and a single-use nonce, so a signature confirms
exactly one transaction and cannot be replayed for another.
"""

from __future__ import annotations

import secrets
import string
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from app.domain.money import to_wire

NONCE_ALPHABET = string.ascii_letters + string.digits
NONCE_LENGTH = 16


def effective_amount(platform: Decimal, own: Decimal | None) -> Decimal | None:
    """The step-up amount in force: the lower of the platform's (0: none) and the user's own."""
    candidates = [a for a in (platform if platform > 0 else None, own) if a is not None]
    return min(candidates) if candidates else None


@dataclass(frozen=True)
class Confirmation:
    domain: str  # who asks: a wallet shows it, so a look-alike site's request stands out
    transaction_id: uuid.UUID
    kind: str
    amount: Decimal
    destination: str
    signer: str
    nonce: str
    expires_at: datetime

    @property
    def message(self) -> str:
        return "\n".join(
            [
                f"{self.domain} asks you to confirm a {self.kind}:",
                f"Amount: {to_wire(self.amount)} tokens",
                f"To: {self.destination}",
                f"Transaction: {self.transaction_id}",
                f"Signer: {self.signer}",
                f"Nonce: {self.nonce}",
                f"Expires: {self.expires_at.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%SZ')}",
            ]
        )

    def stored(self) -> dict[str, Any]:
        """What the transaction keeps (its `details.confirmation`) to verify the signature."""
        return {
            "address": self.signer,
            "nonce": self.nonce,
            "message": self.message,
            "expires_at": self.expires_at.isoformat(),
        }


def new_confirmation(
    domain: str,
    transaction_id: uuid.UUID,
    kind: str,
    amount: Decimal,
    destination: str,
    signer: str,
    expires_at: datetime,
) -> Confirmation:
    nonce = "".join(secrets.choice(NONCE_ALPHABET) for _ in range(NONCE_LENGTH))
    # whole seconds: the stored expiry is exactly the one written in the message
    return Confirmation(
        domain,
        transaction_id,
        kind,
        amount,
        destination,
        signer,
        nonce,
        expires_at.replace(microsecond=0),
    )
