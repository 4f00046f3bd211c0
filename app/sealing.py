"""Encryption at rest for sensitive wallet data: PyNaCl SecretBox (XSalsa20-Poly1305) under
`WALLET_DATA_KEY`, with a key id on every sealed value so keys can rotate.

WALLET_DATA_KEY = "<kid>:<base64 32-byte key>[,<kid>:<key>…]" — the first key seals, all of them
unseal. To rotate: put the new key first, keep the old ones, run `flask keys rotate`, then drop
the old keys.
"""

from __future__ import annotations

import base64
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from nacl.exceptions import CryptoError
from nacl.secret import SecretBox


class SealingError(Exception):
    pass


class Keyring:
    def __init__(self, spec: str) -> None:
        self._boxes: dict[str, SecretBox] = {}
        self.current = ""
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            kid, _, encoded = part.partition(":")
            key = base64.b64decode(encoded)
            if not kid or len(key) != SecretBox.KEY_SIZE:
                raise SealingError("WALLET_DATA_KEY entries are <kid>:<base64 32-byte key>")
            self._boxes[kid] = SecretBox(key)
            self.current = self.current or kid
        if not self.current:
            raise SealingError("WALLET_DATA_KEY is empty")

    def seal(self, payload: dict[str, Any]) -> dict[str, str]:
        box = self._boxes[self.current].encrypt(json.dumps(payload).encode())
        return {"kid": self.current, "box": base64.b64encode(bytes(box)).decode()}

    def unseal(self, sealed: dict[str, str]) -> dict[str, Any]:
        box = self._boxes.get(sealed.get("kid", ""))
        if box is None:
            raise SealingError(f"no key {sealed.get('kid')!r} in WALLET_DATA_KEY")
        try:
            return dict(json.loads(box.decrypt(base64.b64decode(sealed["box"]))))
        except (CryptoError, ValueError, KeyError) as exc:
            raise SealingError("sealed value does not open with its key") from exc

    def is_current(self, sealed: dict[str, str]) -> bool:
        return sealed.get("kid") == self.current


def generate_key_spec() -> str:
    kid = "k" + datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    return f"{kid}:{base64.b64encode(secrets.token_bytes(SecretBox.KEY_SIZE)).decode()}"
