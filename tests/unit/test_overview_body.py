"""The wallet overview is serialised by hand for speed; its wallet part must stay exactly what the
documented schema (`WalletOverviewSchema`) produces (the history, built by the database, is
compared with the schema in tests/integration/test_history.py)."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import orjson
import pytest

from app.api.schemas import WalletOverviewSchema
from app.api.wallet import overview_body
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
    view = {
        **wallet.__dict__,
        "is_connected": wallet.is_connected,
        "external_balance": external,
        "external_balance_available": available,
    }

    expected = WalletOverviewSchema().dump({"wallet": view, "transaction_history": []})

    body = overview_body(wallet, "[]", external, available)
    assert orjson.loads(orjson.dumps(body)) == expected
