"""Users and their one wallet: provisioning on first authenticated use, system wallets, the view."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db import Database
from app.domain.errors import WalletNotFoundError
from app.domain.transactions import Role, WalletKind
from app.models import User, Wallet
from app.services import audit

# Fixed ids of the system accounts, so every process and every migration agrees on them.
PLATFORM_USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
ISSUANCE_USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000002")
CHAIN_USER_ID = uuid.UUID("00000000-0000-0000-0000-000000000003")

SYSTEM_ACCOUNTS = {
    "platform": (PLATFORM_USER_ID, Role.PLATFORM, WalletKind.PLATFORM),
    "issuance": (ISSUANCE_USER_ID, Role.SYSTEM, WalletKind.EXTERNAL),
    "chain": (CHAIN_USER_ID, Role.SYSTEM, WalletKind.EXTERNAL),
}


def ensure_user_wallet(
    session: Session, user_id: uuid.UUID, role: str, kind: WalletKind = WalletKind.USER
) -> uuid.UUID:
    """Get-or-create the user and their one wallet; safe when many first requests race: the
    unique indexes decide, `ON CONFLICT DO NOTHING` makes the losers no-ops."""
    session.execute(insert(User).values(id=user_id, role=role).on_conflict_do_nothing())
    created = session.scalar(
        insert(Wallet)
        .values(user_id=user_id, kind=kind.value)
        .on_conflict_do_nothing(index_elements=[Wallet.user_id])
        .returning(Wallet.id)
    )
    if created is not None:
        audit.record(session, "wallet.created", actor_id=user_id, target=created, role=role)
    wallet_id = session.scalar(select(Wallet.id).where(Wallet.user_id == user_id))
    assert wallet_id is not None
    return wallet_id


class Provisioner:
    """Provisions users on their first valid token. Remembers (bounded) who already exists so a
    known user's request costs no write."""

    def __init__(self, db: Database, capacity: int = 100_000) -> None:
        self._db = db
        self._known: OrderedDict[uuid.UUID, uuid.UUID] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def wallet_id_for(self, user_id: uuid.UUID, role: str) -> uuid.UUID:
        with self._lock:
            wallet_id = self._known.get(user_id)
            if wallet_id is not None:
                self._known.move_to_end(user_id)
                return wallet_id
        with self._db.transaction() as session:
            wallet_id = ensure_user_wallet(session, user_id, role)
        with self._lock:
            self._known[user_id] = wallet_id
            if len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return wallet_id


class SystemWallets:
    """The platform wallet and the external contra accounts, resolved once through a cached
    get-or-create."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._ids: dict[str, uuid.UUID] = {}
        self._lock = threading.Lock()

    def wallet_id(self, name: str) -> uuid.UUID:
        with self._lock:
            if name not in self._ids:
                user_id, role, kind = SYSTEM_ACCOUNTS[name]
                with self._db.transaction() as session:
                    self._ids[name] = ensure_user_wallet(session, user_id, role.value, kind)
            return self._ids[name]

    def platform(self) -> uuid.UUID:
        return self.wallet_id("platform")


@dataclass(frozen=True)
class WalletView:
    id: uuid.UUID
    user_id: uuid.UUID
    balance: Decimal
    available_balance: Decimal
    address: str | None
    network: str
    is_active: bool
    created_at: datetime
    last_used: datetime | None

    @property
    def is_connected(self) -> bool:
        return self.address is not None


def load_wallet(session: Session, wallet_id: uuid.UUID) -> WalletView:
    wallet = session.get(Wallet, wallet_id)
    if wallet is None:
        raise WalletNotFoundError()
    return WalletView(
        id=wallet.id,
        user_id=wallet.user_id,
        balance=wallet.balance,
        available_balance=wallet.balance - wallet.reserved,
        address=wallet.address,
        network=wallet.network,
        is_active=wallet.is_active,
        created_at=wallet.created_at,
        last_used=wallet.last_used,
    )
