"""Low-balance alerts: exactly one alert each time a wallet's balance drops below its threshold.

Each wallet carries an arming flag. A wallet is *armed* once its balance is at or above its
threshold; an armed wallet found below it fires one `low_balance` notification and is disarmed in
the same database transaction, so nothing fires again until the balance has gone back up (re-arm)
and down. A brand-new empty wallet starts disarmed: it never crossed anything.

Alerts fire where balances are written: the settlement writer (`batch_writes`, which every
settlement batch, fraud-hold decision, poison failure and expired deposit goes through) walks
each person's balances in the order it writes them, fires one alert for every drop below the
threshold while armed, re-arms on every return to it, and stores the arming flag with the
balance, under the wallet lock. So every crossing alerts once, however fast the balance moves.
A threshold change arms at once (`set_threshold`). This beat run remains the safety net for what
no balance write decides: a threshold raised above an armed wallet's balance alerts on the next
run, and rows written before write-time alerts existed are armed here.

The threshold is the user's own (`users.low_balance_threshold`) or the platform default. Both
passes are index range scans on partial indexes (`ix_wallets_armed_balance`,
`ix_wallets_disarmed_balance`) bounded by the extreme thresholds in use, in batches.

Concurrency: candidates are locked `SKIP LOCKED` and re-checked under the row lock, so two runs
(two beat schedulers, a redelivered task) never alert twice for one crossing; a transaction-level
advisory lock additionally makes a concurrent run skip the work instead of racing for rows.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple

from sqlalchemy import text, update
from sqlalchemy.orm import Session

from app.advisory_locks import Namespace
from app.bootstrap import Wiring
from app.config import Config
from app.domain.errors import WalletNotFoundError
from app.domain.notifications import low_balance_alert
from app.models import User
from app.services import notifications

BATCH_SIZE = 10_000

_TRY_LOCK = text("SELECT pg_try_advisory_xact_lock(:ns, 0)")
# Without an index on users.low_balance_threshold this reads the users table once per run.
_BOUNDS = text("SELECT min(low_balance_threshold), max(low_balance_threshold) FROM users")
# Candidates come from a range scan of a partial index; the user's own threshold is looked up
# (primary key) only for balances between the lowest and highest threshold in use. The UPDATE
# then touches the locked rows by primary key (`= ANY(ARRAY(…))`, never a join the planner could
# turn into a scan of all wallets).
_FIRE = text(
    """
    WITH due AS (
        SELECT w.id
          FROM wallets w
         WHERE w.low_balance_armed AND w.kind = 'user'
           AND w.balance < :max_threshold
           AND (w.balance < :min_threshold
                OR w.balance < (SELECT COALESCE(u.low_balance_threshold, :default)
                                  FROM users u WHERE u.id = w.user_id))
         LIMIT :limit
           FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE wallets w
       SET low_balance_armed = false
      FROM users u
     WHERE w.id = ANY(ARRAY(SELECT id FROM due)) AND u.id = w.user_id AND w.low_balance_armed
    RETURNING w.user_id, w.balance, COALESCE(u.low_balance_threshold, :default) AS threshold
    """
)
_ARM = text(
    """
    WITH ready AS (
        SELECT w.id
          FROM wallets w
         WHERE NOT w.low_balance_armed AND w.kind = 'user'
           AND w.balance >= :min_threshold
           AND (w.balance >= :max_threshold
                OR w.balance >= (SELECT COALESCE(u.low_balance_threshold, :default)
                                   FROM users u WHERE u.id = w.user_id))
         LIMIT :limit
           FOR NO KEY UPDATE SKIP LOCKED
    )
    UPDATE wallets w
       SET low_balance_armed = true
     WHERE w.id = ANY(ARRAY(SELECT id FROM ready)) AND NOT w.low_balance_armed
    """
)


_ARM_USER = text(
    """
    UPDATE wallets w
       SET low_balance_armed = true
     WHERE w.user_id = :user_id AND NOT w.low_balance_armed AND w.kind = 'user'
       AND w.balance >= :threshold
    """
)


class LowBalanceRun(NamedTuple):
    alerted: int
    armed: int


def run(wiring: Wiring, *, batch_size: int = BATCH_SIZE) -> LowBalanceRun:
    """One pass of the beat job: fire (and disarm) every armed wallet below its threshold, then
    arm every disarmed wallet at or above it. Returns how many alerted and how many armed."""
    config = wiring.config
    default = config.default_low_balance_threshold
    with wiring.db.transaction() as session:
        lowest, highest = session.execute(_BOUNDS).one()
    params: dict[str, Any] = {
        "default": default,
        "max_threshold": max(default, highest if highest is not None else default),
        "min_threshold": min(default, lowest if lowest is not None else default),
        "limit": batch_size,
    }
    alerted = armed = 0
    while True:
        with wiring.db.transaction() as session:
            if not _try_lock(session):
                return LowBalanceRun(alerted, armed)  # another run is at it right now
            fired = session.execute(_FIRE, params).all()
            written = notifications.write(
                session,
                [low_balance_alert(r.user_id, r.balance, r.threshold) for r in fired],
                webhooks=bool(config.webhook_url),
            )
        notifications.dispatch(wiring, written)
        alerted += len(fired)
        if len(fired) < batch_size:
            break
    while True:
        with wiring.db.transaction() as session:
            if not _try_lock(session):
                return LowBalanceRun(alerted, armed)
            count = int(session.execute(_ARM, params).rowcount)  # type: ignore[attr-defined]
        armed += count
        if count < batch_size:
            return LowBalanceRun(alerted, armed)


def _try_lock(session: Session) -> bool:
    return bool(session.scalar(_TRY_LOCK, {"ns": Namespace.LOW_BALANCE}))


@dataclass(frozen=True)
class AlertSettings:
    low_balance_threshold: Decimal | None
    effective_low_balance_threshold: Decimal


def settings_of(session: Session, config: Config, user_id: uuid.UUID) -> AlertSettings:
    user = session.get(User, user_id)
    if user is None:
        raise WalletNotFoundError()
    return _settings(config, user.low_balance_threshold)


def set_threshold(
    session: Session, config: Config, user_id: uuid.UUID, threshold: Decimal | None
) -> AlertSettings:
    """Store the user's own threshold (None: the platform default). An armed wallet stays
    armed: below a raised threshold it alerts once on the next run. A disarmed wallet at or above
    the new threshold is armed now, so a drop below it soon after still alerts."""
    stored = session.execute(
        update(User)
        .where(User.id == user_id)
        .values(low_balance_threshold=threshold)
        .returning(User.low_balance_threshold)
    ).first()
    if stored is None:
        raise WalletNotFoundError()
    found = _settings(config, stored[0])
    session.execute(
        _ARM_USER, {"user_id": user_id, "threshold": found.effective_low_balance_threshold}
    )
    return found


def _settings(config: Config, threshold: Decimal | None) -> AlertSettings:
    effective = config.default_low_balance_threshold if threshold is None else threshold
    return AlertSettings(threshold, effective)
