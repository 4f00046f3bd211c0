"""SQLAlchemy 2 typed models: the persistence adapter for the domain.

The schema itself is owned by Alembic (`migrations/`); a test proves the two never drift.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Numeric,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, column_property, mapped_column

from app.domain.accounts import Role, WalletKind
from app.domain.transactions import Kind, Stage, Status

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

Money = Numeric(18, 6)


def one_of(column: str, values: type[enum.StrEnum]) -> str:
    """A CHECK that `column` holds one of the enum's values: the domain's enums are the one list
    (tests/integration/test_migrations.py checks the migrated database has the same)."""
    return f"{column} IN ({', '.join(repr(v.value) for v in values)})"


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


def _now() -> Any:
    return mapped_column(DateTime(timezone=True), nullable=False, server_default=func.now())


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(one_of("role", Role), name="role"),
        Index(
            "ix_users_low_balance_threshold",
            "low_balance_threshold",
            postgresql_where=text("low_balance_threshold IS NOT NULL"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    role: Mapped[str] = mapped_column(Text, nullable=False, server_default="user")
    created_at: Mapped[datetime] = _now()
    low_balance_threshold: Mapped[Decimal | None] = mapped_column(Money, nullable=True)


class WalletCounters(Base):
    """The submit side of a wallet (migration 0007): only accepting a request writes it, so
    submissions never wait on the wallet row that settlement batches lock."""

    __tablename__ = "wallet_counters"

    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), primary_key=True)
    # Last `seq` handed to a transaction debiting this wallet.
    next_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    # Every amount ever reserved for this wallet's debits (see `Wallet.reserved`).
    reserved_total: Mapped[Decimal] = mapped_column(Numeric, nullable=False, server_default="0")
    last_used: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # The wallet's active escrow holds in total (part of the reservation, migration 0014).
    on_hold: Mapped[Decimal] = mapped_column(Numeric, nullable=False, server_default="0")


class Wallet(Base):
    __tablename__ = "wallets"
    __table_args__ = (
        CheckConstraint("balance >= 0 OR kind = 'external'", name="balance_non_negative"),
        CheckConstraint("held >= 0", name="held_non_negative"),
        CheckConstraint(one_of("kind", WalletKind), name="kind"),
        UniqueConstraint("user_id"),
        UniqueConstraint("address"),
        Index("ix_wallets_armed_balance", "balance", postgresql_where=text("low_balance_armed")),
        Index(
            "ix_wallets_disarmed_balance", "balance", postgresql_where=text("NOT low_balance_armed")
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False, server_default="user")
    balance: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")
    # Every reserved amount settlement has released: spent by a settled debit or given back by a
    # failure. Settlement's side of the reservation; the submit side is `WalletCounters`.
    released_total: Mapped[Decimal] = mapped_column(Numeric, nullable=False, server_default="0")
    # Sum of this wallet's HELD debits (part of `reserved`): later debits settle against
    # balance - held.
    held: Mapped[Decimal] = mapped_column(Money, nullable=False, server_default="0")
    # Last `seq` settled (completed or failed): settlement only ever takes settled_seq + 1 next.
    # The user's own step-up amount (migration 0015): NULL for the platform's STEP_UP_AMOUNT.
    step_up_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    settled_seq: Mapped[int] = mapped_column(BigInteger, nullable=False, server_default="0")
    address: Mapped[str | None] = mapped_column(Text, nullable=True)
    # When `address` was connected (NULL: before migration 0012): the withdrawal cooldown.
    address_connected_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )
    network: Mapped[str] = mapped_column(Text, nullable=False, server_default="solana")
    is_active: Mapped[bool] = mapped_column(Boolean, nullable=False, server_default=text("true"))
    created_at: Mapped[datetime] = _now()
    data: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    # Low-balance alerts: armed once the balance is at or above the threshold; an alert fires
    # (and disarms) when an armed wallet drops below it — exactly one alert per crossing.
    low_balance_armed: Mapped[bool] = mapped_column(
        Boolean, nullable=False, server_default=text("false")
    )
    # Sum of this wallet's PENDING and HELD debits; available = balance - reserved (see `ledger
    # check`). Read-only here: written as the two running totals.
    reserved: Mapped[Decimal] = column_property(
        select(WalletCounters.reserved_total)
        .where(WalletCounters.wallet_id == id)
        .scalar_subquery()
        - released_total
    )
    last_used: Mapped[datetime | None] = column_property(
        select(WalletCounters.last_used).where(WalletCounters.wallet_id == id).scalar_subquery()
    )


class Transaction(Base):
    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint(one_of("status", Status), name="status"),
        CheckConstraint(one_of("kind", Kind), name="kind"),
        CheckConstraint("debit_wallet_id <> credit_wallet_id", name="distinct_wallets"),
        UniqueConstraint("debit_wallet_id", "seq"),
        # Partial: most transactions have no reference, signature or parent (migration 0007).
        Index(
            "uq_transactions_reference",
            "reference",
            unique=True,
            postgresql_where=text("reference IS NOT NULL"),
        ),
        Index(
            "uq_transactions_tx_hash",
            "tx_hash",
            unique=True,
            postgresql_where=text("tx_hash IS NOT NULL"),
        ),
        Index(
            "ix_transactions_pending",
            "shard",
            "created_at",
            postgresql_where=text("status = 'pending' AND stage IS NULL"),
        ),
        Index(
            "ix_transactions_chain_stage",
            "stage",
            "created_at",
            postgresql_where=text("stage IS NOT NULL"),
        ),
        CheckConstraint(f"stage IS NULL OR {one_of('stage', Stage)}", name="stage"),
        Index("ix_transactions_debit_history", "debit_wallet_id", "created_at", "id"),
        Index("ix_transactions_credit_history", "credit_wallet_id", "created_at", "id"),
        Index(
            "ix_transactions_parent_id", "parent_id", postgresql_where=text("parent_id IS NOT NULL")
        ),
        # The fraud rules' per-sender inputs: what was debited (or held) through screened kinds.
        Index(
            "ix_transactions_screened_debits",
            "debit_wallet_id",
            "created_at",
            postgresql_where=text(
                "kind IN ('transfer', 'withdrawal')"
                " AND (status IN ('completed', 'held') OR stage = 'on_chain')"
            ),
        ),
        # The admins' review queue.
        Index("ix_transactions_held", "created_at", "id", postgresql_where=text("status = 'held'")),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="pending")
    # Chain-bound PENDING work outside the ledger batches: a deposit `awaiting_payment`, or a
    # withdrawal already debited in the ledger and now `on_chain` (sent, awaiting finality).
    stage: Mapped[str | None] = mapped_column(Text, nullable=True)
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # No foreign keys to wallets or users (migration 0016): checking them locked the referenced
    # rows on every accepted request; accept_transactions checks the wallets it is given, and
    # wallets and users are never deleted.
    debit_wallet_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    credit_wallet_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    seq: Mapped[int] = mapped_column(BigInteger, nullable=False)
    shard: Mapped[int] = mapped_column(SmallInteger, nullable=False)
    initiator_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
    failure_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    parent_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("transactions.id"), nullable=True
    )
    reference: Mapped[str | None] = mapped_column(Text, nullable=True)
    tx_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    last_valid_block_height: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    signed_tx: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # A withdrawal: times its signed bytes were handed to the cluster (counted before each send).
    chain_sends: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # A deposit: when its payment was last looked for (watcher round-robin, on-demand limit).
    checked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class LedgerEntry(Base):
    """An immutable posting. A trigger refuses UPDATE and DELETE."""

    __tablename__ = "ledger_entries"
    __table_args__ = (
        UniqueConstraint("transaction_id", "wallet_id"),
        Index(
            "ix_ledger_entries_wallet_id_created_at",
            "wallet_id",
            "created_at",
            postgresql_include=["amount", "transaction_id"],
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No foreign keys (migration 0019): settlement writes entries in the transaction that settles
    # their transaction and locks their wallets, nothing deletes either, and `ledger check`
    # verifies each entry against its transaction.
    transaction_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    wallet_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    balance_after: Mapped[Decimal] = mapped_column(Money, nullable=False)
    created_at: Mapped[datetime] = _now()


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"
    __table_args__ = (
        UniqueConstraint("owner_id", "key"),
        CheckConstraint("state IN ('in_flight', 'completed')", name="state"),
        Index("ix_idempotency_keys_expires_at", "expires_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    owner_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    key: Mapped[str] = mapped_column(Text, nullable=False)
    fingerprint: Mapped[str] = mapped_column(Text, nullable=False)
    state: Mapped[str] = mapped_column(Text, nullable=False)
    response_status: Mapped[int] = mapped_column(Integer, nullable=False)
    response_body: Mapped[dict[str, Any]] = mapped_column(JSONB, nullable=False)
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    created_at: Mapped[datetime] = _now()
    # While in flight (a request waiting for settlement), duplicates answer 409 until this passes.
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)


class AuditLog(Base):
    """Append-only at the database level: a trigger refuses UPDATE and DELETE."""

    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_occurred_at", "occurred_at"),
        Index(
            "ix_audit_log_actor_id_occurred_at",
            "actor_id",
            "occurred_at",
            postgresql_where=text("actor_id IS NOT NULL"),
        ),
        Index("ix_audit_log_action_occurred_at", "action", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    occurred_at: Mapped[datetime] = _now()
    actor_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    action: Mapped[str] = mapped_column(Text, nullable=False)
    target: Mapped[str | None] = mapped_column(Text, nullable=True)
    request_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    ip: Mapped[str | None] = mapped_column(Text, nullable=True)
    details: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )


class Notification(Base):
    """The outbox: written in the same database transaction as the event it reports, pushed
    (Redis pub/sub → SSE, webhooks) only after that commit."""

    __tablename__ = "notifications"
    __table_args__ = (
        Index("ix_notifications_user_id_id", "user_id", "id"),
        Index(
            "ix_notifications_webhook_due",
            "webhook_next_at",
            postgresql_where=text("webhook_status = 'pending'"),
        ),
        CheckConstraint(
            "webhook_status IS NULL OR webhook_status IN ('pending', 'delivered', 'failed')",
            name="webhook_status",
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    # No foreign keys on the outbox: written only with the rows it refers to (see migration 0006).
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    kind: Mapped[str] = mapped_column(Text, nullable=False)
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(
        JSONB, nullable=False, server_default=text("'{}'::jsonb")
    )
    created_at: Mapped[datetime] = _now()
    read_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    # Webhook delivery (only when WEBHOOK_URL is configured at the time of writing).
    webhook_status: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_attempts: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    webhook_next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    webhook_last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    webhook_delivered_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), nullable=True
    )


class EscrowHold(Base):
    """A deal's two-phase reservation on a user's wallet (migration 0014): active until captured
    (a transaction moves the captured part) or released (voided, expired)."""

    __tablename__ = "escrow_holds"
    __table_args__ = (
        Index(
            "ix_escrow_holds_active_wallet",
            "wallet_id",
            "created_at",
            postgresql_where=text("status = 'active'"),
        ),
        Index(
            "ix_escrow_holds_active_expiry",
            "expires_at",
            postgresql_where=text("status = 'active'"),
        ),
        CheckConstraint("amount > 0", name="amount_positive"),
        CheckConstraint("status IN ('active', 'captured', 'released')", name="status"),
        CheckConstraint(
            "status <> 'captured' OR (captured_amount > 0 AND captured_amount <= amount"
            " AND transaction_id IS NOT NULL)",
            name="captured",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    wallet_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("wallets.id"), nullable=False)
    service_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Money, nullable=False)
    reason: Mapped[str] = mapped_column(Text, nullable=False)
    status: Mapped[str] = mapped_column(Text, nullable=False, server_default="active")
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    created_at: Mapped[datetime] = _now()
    decided_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    captured_amount: Mapped[Decimal | None] = mapped_column(Money, nullable=True)
    transaction_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True), nullable=True)
    release_reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class SettlementShard(Base):
    """One row per settlement shard. `unclean_runs` counts settlement runs that started but never
    committed (a crashed worker); above zero the next run settles wallet by wallet to isolate a
    poison transaction."""

    __tablename__ = "settlement_shards"

    shard: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    unclean_runs: Mapped[int] = mapped_column(Integer, nullable=False, server_default="0")
    # Until when a job running on the shard will still look for pending work (migration 0017):
    # meanwhile an accepted request needs no kick (`settlement_running`).
    running_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)


class WalletChallenge(Base):
    """A Sign-In-With-Solana challenge: the exact message a user must sign to connect an address.
    Single use (`consumed_at`), short-lived, bound to the user who asked for it."""

    __tablename__ = "wallet_challenges"
    __table_args__ = (
        UniqueConstraint("nonce"),
        Index("ix_wallet_challenges_user_id_created_at", "user_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"), nullable=False)
    address: Mapped[str] = mapped_column(Text, nullable=False)
    nonce: Mapped[str] = mapped_column(Text, nullable=False)
    message: Mapped[str] = mapped_column(Text, nullable=False)
    created_at: Mapped[datetime] = _now()
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False)
    consumed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
