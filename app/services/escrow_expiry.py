"""The escrow-hold expiry beat job (the concurrency rules: `app.services.escrow`)."""

from __future__ import annotations

from sqlalchemy import text

from app.bootstrap import Wiring
from app.services import audit, notifications, reservations
from app.services.escrow_decisions import released_notification
from app.services.recording import RELEASE_JOBS_LOCK

EXPIRY_BATCH = 1000

# Set-based expiry: due holds (skipping those a capture or void is deciding right now) and who to
# tell; their wallets' counters follow (`reservations.change`).
_EXPIRE = text(
    """
    WITH due AS (
        SELECT id FROM escrow_holds
         WHERE status = 'active' AND expires_at <= now()
         ORDER BY expires_at
         LIMIT :limit
           FOR UPDATE SKIP LOCKED
    ), released AS (
        UPDATE escrow_holds h
           SET status = 'released', decided_at = now(), release_reason = 'expired'
          FROM due
         WHERE h.id = due.id AND h.status = 'active'
        RETURNING h.id, h.wallet_id, h.amount, h.reason
    )
    SELECT r.id, r.wallet_id, r.amount, r.reason, w.user_id
      FROM released r JOIN wallets w ON w.id = r.wallet_id
    """
)


def expire(wiring: Wiring, *, batch_size: int = EXPIRY_BATCH) -> int:
    """The beat job: release every hold past its expiry, in batches; returns how many. One run
    at a time (advisory lock); holds a capture or void is deciding right now are skipped (that
    decision wins)."""
    released = 0
    while True:
        with wiring.db.transaction() as session:
            if not session.scalar(RELEASE_JOBS_LOCK):  # one such job at a time
                return released
            rows = session.execute(_EXPIRE, {"limit": batch_size}).all()
            reservations.change(
                session.connection(),
                [
                    reservations.Change(r.wallet_id, reserved=-r.amount, on_hold=-r.amount)
                    for r in rows
                ],
            )
            audit.record_many(
                session,
                [audit.entry("hold.expired", actor_id=None, target=r.id) for r in rows],
            )
            written = notifications.write(
                session,
                [
                    released_notification(r.user_id, r.id, r.amount, r.reason, "expired")
                    for r in rows
                ],
                webhooks=bool(wiring.config.webhook_url),
            )
        notifications.dispatch(wiring, written)
        released += len(rows)
        if len(rows) < batch_size:
            return released
