"""Re-sealing wallet data under the current key (`flask keys rotate`)."""

from __future__ import annotations

from sqlalchemy import or_, select

from app.db import Database
from app.models import Wallet
from app.sealing import Keyring

SEALED_FIELDS = ("connection_proof",)


def rotate(db: Database, keyring: Keyring, batch: int = 500) -> int:
    """Re-seal every sealed field not under the current key; returns how many were re-sealed."""
    resealed, after = 0, None
    while True:
        with db.transaction() as session:
            query = select(Wallet).where(
                or_(*(Wallet.data.has_key(name) for name in SEALED_FIELDS))
            )
            if after is not None:
                query = query.where(Wallet.id > after)
            wallets = session.scalars(
                query.order_by(Wallet.id).limit(batch).with_for_update()
            ).all()
            for wallet in wallets:
                data = dict(wallet.data)
                for name in SEALED_FIELDS:
                    sealed = data.get(name)
                    if isinstance(sealed, dict) and not keyring.is_current(sealed):
                        data[name] = keyring.seal(keyring.unseal(sealed))
                        resealed += 1
                wallet.data = data
        if len(wallets) < batch:
            return resealed
        after = wallets[-1].id
