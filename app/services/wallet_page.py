"""What the wallet page shows on first paint: the wallet, a page of history, the alert setting
and the months' totals, read through the same services as the API (so it has no rules of its
own). Each read is its own short statement; none waits on another's lock."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from app.bootstrap import Wiring
from app.domain.errors import WalletError
from app.services import analytics, history, low_balance, wallets


@dataclass(frozen=True)
class PageView:
    wallet: wallets.WalletView
    items: list[history.TransactionView]
    next_cursor: str | None
    filter_error: str | None  # why the filters or cursor were refused (then no history shown)
    settings: low_balance.AlertSettings
    months: list[analytics.MonthTotals]


def page_view(
    wiring: Wiring,
    user_id: uuid.UUID,
    wallet_id: uuid.UUID,
    filters: history.Filters,
    limit: int,
    cursor: str | None,
) -> PageView:
    db = wiring.db
    wallet, _ = wallets.overview(db, wallet_id, limit=0)
    filter_error = None
    try:
        with db.statement() as conn:
            items, next_cursor = history.list_transactions(conn, wallet_id, filters, limit, cursor)
    except WalletError as error:  # a cursor that is not one of ours
        items, next_cursor, filter_error = [], None, error.detail
    with db.transaction() as session:
        settings = low_balance.settings_of(session, wiring.config, user_id)
    with db.statement() as conn:
        months = analytics.monthly_totals(conn, wallet_id)
    return PageView(wallet, items, next_cursor, filter_error, settings, months)
