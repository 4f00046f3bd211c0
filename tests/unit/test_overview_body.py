"""The wallet overview is serialised by hand for speed; it must stay exactly what the documented
schema (`WalletOverviewSchema`) produces."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from app.api.schemas import WalletOverviewSchema
from app.api.wallet import overview_body
from app.services.history import TransactionView
from app.services.wallets import WalletView

NOW = datetime(2026, 11, 28, 12, 30, 1, 123456, tzinfo=UTC)


def _wallet(address: str | None, last_used: datetime | None) -> WalletView:
    return WalletView(
        id=uuid.uuid4(),
        user_id=uuid.uuid4(),
        balance=Decimal("12.5"),
        available_balance=Decimal("2.000001"),
        on_hold=Decimal("3.25"),
        address=address,
        network="solana",
        is_active=True,
        created_at=NOW,
        last_used=last_used,
    )


def _item(amount: str, note: str | None, reason: str | None) -> TransactionView:
    return TransactionView(
        id=uuid.uuid4(),
        type="transfer",
        amount=Decimal(amount),
        status="failed" if reason else "completed",
        note=note,
        failure_reason=reason,
        balance_after=None,
        tx_hash=None,
        created_at=NOW,
        completed_at=None,
        direction="debit",
    )


@pytest.mark.parametrize(
    ("address", "last_used", "external", "available"),
    [
        (None, None, None, False),
        ("7Yk1xq9PVqv6Yt1bZ9m3yW4dVfVbV7bH7TPh2o3JmFkV", NOW, Decimal("3.25"), True),
        ("7Yk1xq9PVqv6Yt1bZ9m3yW4dVfVbV7bH7TPh2o3JmFkV", NOW, None, False),
    ],
)
def test_the_hand_built_overview_equals_the_schemas_dump(
    address: str | None, last_used: datetime | None, external: Decimal | None, available: bool
) -> None:
    wallet = _wallet(address, last_used)
    items = [_item("-1.5", "lunch", None), _item("20", None, "insufficient_balance")]
    view = {
        **wallet.__dict__,
        "is_connected": wallet.is_connected,
        "external_balance": external,
        "external_balance_available": available,
    }

    expected = WalletOverviewSchema().dump({"wallet": view, "transaction_history": items})

    assert overview_body(wallet, items, external, available) == expected
