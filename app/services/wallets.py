"""Users and their one wallet: provisioning on first authenticated use, system wallets, the view."""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from app.db import Database
from app.domain.accounts import (
    CHAIN_USER_ID,
    ISSUANCE_USER_ID,
    PLATFORM_USER_ID,
    Role,
    WalletKind,
    is_reserved,
)
from app.domain.errors import ReservedSubjectError, WalletNotFoundError
from app.models import User, Wallet
from app.services import audit

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
        if is_reserved(user_id):  # authentication refuses these first; never provision one
            raise ReservedSubjectError()
        with self._lock:
            wallet_id = self._known.get(user_id)
            if wallet_id is not None:
                self._known.move_to_end(user_id)
                return wallet_id
        with self._db.statement() as conn:  # known to the database, just not to this process
            wallet_id = conn.scalar(select(Wallet.id).where(Wallet.user_id == user_id))
        if wallet_id is None:
            with self._db.transaction() as session:
                wallet_id = ensure_user_wallet(session, user_id, role)
        with self._lock:
            self._known[user_id] = wallet_id
            if len(self._known) > self._capacity:
                self._known.popitem(last=False)
        return wallet_id

    def ensure_users(self, user_ids: Iterable[uuid.UUID]) -> None:
        """Get-or-create the wallets of users a service operates on (a reward, a charge, an
        escrow hold), the way their first login would, in at most two statements for any number
        of users. An id of the reserved range is skipped, never created: the submission then
        refuses it as `recipient_not_found`, like an unknown user's used to be."""
        wanted = {u for u in user_ids if not is_reserved(u)}
        with self._lock:
            wanted -= self._known.keys()
        if not wanted:
            return
        with self._db.transaction() as session:
            rows = session.execute(_ENSURE_USERS, {"ids": sorted(wanted)}).all()
            audit.record_many(
                session,
                [
                    audit.entry(
                        "wallet.created", actor_id=r.user_id, target=r.wallet_id, role="user"
                    )
                    for r in rows
                    if r.created
                ],
            )
        with self._lock:
            for r in rows:
                self._known[r.user_id] = r.wallet_id
            while len(self._known) > self._capacity:
                self._known.popitem(last=False)


# Race-safe like `ensure_user_wallet`: the unique indexes decide, the losers are no-ops and read
# the winner's wallet. Sorted ids: concurrent callers insert in the same order (no deadlock).
_ENSURE_USERS = text(
    """
    WITH wanted AS (SELECT unnest(CAST(:ids AS uuid[])) AS user_id),
    users_added AS (
        INSERT INTO users (id, role) SELECT user_id, 'user' FROM wanted ORDER BY user_id
        ON CONFLICT DO NOTHING
    ), created AS (
        INSERT INTO wallets (user_id, kind)
        SELECT user_id, 'user' FROM wanted
         WHERE NOT EXISTS (SELECT 1 FROM wallets w WHERE w.user_id = wanted.user_id)
         ORDER BY user_id
        ON CONFLICT (user_id) DO NOTHING
        RETURNING id, user_id
    )
    SELECT c.user_id, c.id AS wallet_id, true AS created FROM created c
    UNION ALL
    SELECT w.user_id, w.id, false FROM wallets w JOIN wanted ON wanted.user_id = w.user_id
    """
)


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
    on_hold: Decimal
    address: str | None
    network: str
    is_active: bool
    created_at: datetime
    last_used: datetime | None

    @property
    def is_connected(self) -> bool:
        return self.address is not None


# The history is built by the database in its wire form (WalletOverviewSchema's
# `transaction_history`: amounts signed from this wallet's side with six places, timestamps as
# Python's isoformat writes them, which omits a zero fraction), so the most requested page
# converts no row in Python: about a quarter of its CPU before (issue 9).
_OVERVIEW = """
    WITH newest AS (
        SELECT * FROM (
            (SELECT t.id, t.kind, t.status, t.note, t.failure_reason, t.amount,
                    t.debit_wallet_id, t.created_at
               FROM transactions t WHERE t.debit_wallet_id = %(wallet_id)s
              ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s)
            UNION ALL
            (SELECT t.id, t.kind, t.status, t.note, t.failure_reason, t.amount,
                    t.debit_wallet_id, t.created_at
               FROM transactions t WHERE t.credit_wallet_id = %(wallet_id)s
              ORDER BY t.created_at DESC, t.id DESC LIMIT %(limit)s)
        ) AS both_sides
        ORDER BY created_at DESC, id DESC LIMIT %(limit)s
    )
    SELECT w.id, w.user_id, w.balance,
           w.balance - (c.reserved_total - w.released_total) AS available_balance,
           c.on_hold, w.address, w.network, w.is_active, w.created_at, c.last_used,
           (SELECT COALESCE(json_agg(json_build_object(
                       'id', n.id,
                       'type', n.kind,
                       'amount', (CASE WHEN n.debit_wallet_id = w.id THEN -n.amount
                                       ELSE n.amount END)::text,
                       'status', n.status,
                       'timestamp', to_char(n.created_at, CASE
                           WHEN date_part('microseconds', n.created_at)::bigint %% 1000000 = 0
                           THEN 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM'
                           ELSE 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM' END),
                       'note', n.note,
                       'failure_reason', n.failure_reason)
                   ORDER BY n.created_at DESC, n.id DESC), '[]')::text
              FROM newest n) AS history
      FROM wallets w
      JOIN wallet_counters c ON c.wallet_id = w.id
     WHERE w.id = %(wallet_id)s
"""


def overview(db: Database, wallet_id: uuid.UUID, limit: int = 20) -> tuple[WalletView, str]:
    """The wallet and its newest `limit` transactions (a JSON array in the wire form) in one
    query; each side of the history is an index range scan of at most `limit` rows, so the cost
    is flat in the history's length."""
    with db.cursor() as cur:
        w = cur.execute(_OVERVIEW, {"wallet_id": wallet_id, "limit": limit}).fetchone()
    if w is None:
        raise WalletNotFoundError()
    wallet = WalletView(
        id=w.id,
        user_id=w.user_id,
        balance=w.balance,
        available_balance=w.available_balance,
        on_hold=w.on_hold,
        address=w.address,
        network=w.network,
        is_active=w.is_active,
        created_at=w.created_at,
        last_used=w.last_used,
    )
    return wallet, w.history
