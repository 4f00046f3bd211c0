"""Who holds accounts: the roles of principals, the kinds of wallet, the system accounts' fixed
ids and the range of ids kept for them.

Every process and migration agrees on the ids. No token may name an id of the reserved range:
a user provisioned under one would be handed a system wallet, or squat the id of a system account
still to come (its wallet would then be that user's)."""

from __future__ import annotations

import enum
import uuid


class Role(enum.StrEnum):
    USER = "user"
    SERVICE = "service"
    ADMIN = "admin"
    PLATFORM = "platform"
    SYSTEM = "system"


class WalletKind(enum.StrEnum):
    """`user` and `platform` wallets hold money and never go negative. `external` wallets are the
    contra accounts for money entering or leaving the ledger (issuance, the chain): their balance is
    the negative of what they brought in, which keeps every transaction double-entry."""

    USER = "user"
    PLATFORM = "platform"
    EXTERNAL = "external"


PLATFORM_USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
ISSUANCE_USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000002")
CHAIN_USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000003")

# 00000000-0000-0000-0000-000000000000 … 00000000-0000-0000-0000-00000000ffff
_RESERVED_BELOW = 1 << 16


def is_reserved(user_id: uuid.UUID) -> bool:
    """True for a system account's id, present or future (the nil UUID included)."""
    return user_id.int < _RESERVED_BELOW
