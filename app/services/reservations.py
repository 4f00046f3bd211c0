"""The submit side of a wallet: its `wallet_counters` row (migration 0007) — the next `seq`, the
total ever reserved and the part of it on escrow hold.

Two writers own a wallet's money, one per side, so accepting a request never waits for a
settlement batch:
- the submit side, here: accepting a transaction reserves in the database function
  `accept_transactions` (`app.services.recording`); every later change to a reservation before
  settlement — an escrow hold placed, captured, voided or expired, a step-up confirmed or never
  confirmed, a deposit paid another amount than requested — goes through `change`;
- the settled side (balance, released total, `settled_seq`, fraud-held): `batch_writes`.

Available money is `balance − (reserved_total − released_total)`, read from both rows.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from decimal import Decimal

from sqlalchemy import Connection, text

from app.db import json_rows

_CHANGE = text(
    """
    UPDATE wallet_counters AS c
       SET reserved_total = c.reserved_total + d.reserved,
           on_hold = c.on_hold + d.on_hold,
           next_seq = c.next_seq + d.sequenced,
           last_used = CASE WHEN d.used THEN now() ELSE c.last_used END
      FROM jsonb_to_recordset(CAST(:changes AS jsonb))
           AS d(wallet_id uuid, reserved numeric, on_hold numeric, sequenced int, used boolean)
     WHERE c.wallet_id = d.wallet_id
    RETURNING c.wallet_id, c.reserved_total, c.next_seq
    """
)


@dataclass(frozen=True)
class Change:
    """What happens to one wallet's reservation. Negative amounts release."""

    wallet_id: uuid.UUID
    reserved: Decimal = Decimal(0)  # added to the total reserved
    on_hold: Decimal = Decimal(0)  # the part of that on escrow hold
    sequenced: int = 0  # seqs handed out (for transactions inserted outside accept_transactions)
    used: bool = False  # the wallet's owner acted (shown as the wallet's `last_used`)

    def __add__(self, other: Change) -> Change:
        assert other.wallet_id == self.wallet_id
        return Change(
            self.wallet_id,
            self.reserved + other.reserved,
            self.on_hold + other.on_hold,
            self.sequenced + other.sequenced,
            self.used or other.used,
        )


@dataclass(frozen=True)
class Counters:
    reserved_total: Decimal
    next_seq: int  # the last seq handed out


def change(conn: Connection, changes: Iterable[Change]) -> dict[uuid.UUID, Counters]:
    """Apply `changes` (several for one wallet add up) in one statement; returns each changed
    wallet's counters after it."""
    merged: dict[uuid.UUID, Change] = {}
    for c in changes:
        merged[c.wallet_id] = merged[c.wallet_id] + c if c.wallet_id in merged else c
    if not merged:
        return {}
    rows = [asdict(merged[w]) for w in sorted(merged)]  # rows locked in wallet id order
    return {
        r.wallet_id: Counters(r.reserved_total, r.next_seq)
        for r in conn.execute(_CHANGE, {"changes": json_rows(rows)})
    }
