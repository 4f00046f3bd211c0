"""Compare-and-set moves of chain-staged work (deposits awaiting payment, withdrawals on chain):
a redelivered task finds the transaction moved on and changes nothing."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import func, update
from sqlalchemy.orm import Session

from app.domain.transactions import Status
from app.models import Transaction


def advance_staged(
    session: Session,
    tx_id: uuid.UUID,
    stage: str,
    /,
    guard: tuple[Any, ...] = (),
    **values: Any,
) -> Any:
    """Compare-and-set for chain-staged work: move a PENDING transaction that is still in `stage`
    (a redelivered task finds it moved on and changes nothing), and matches every `guard`
    condition. Returns the updated row's (debit_wallet_id, credit_wallet_id, amount), or None
    when it had already moved."""
    return session.execute(
        update(Transaction)
        .where(
            Transaction.id == tx_id,
            Transaction.status == Status.PENDING.value,
            Transaction.stage == stage,
            *guard,
        )
        .values(updated_at=func.now(), **values)
        .returning(Transaction.debit_wallet_id, Transaction.credit_wallet_id, Transaction.amount)
    ).first()
