"""Earned and spent: a wallet's completed money movements summed per month and kind.

One query over the wallet's ledger entries of the last twelve months (a range scan of
`ix_ledger_entries_wallet_id_created_at`, joined to each entry's transaction for its kind): only
completed transactions have entries, so pending and failed ones never count. Months are UTC.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from xml.sax.saxutils import escape

from sqlalchemy import Connection, text

MONTHS = 12

_TOTALS = text(
    """
    SELECT to_char(date_trunc('month', e.created_at AT TIME ZONE 'UTC'), 'YYYY-MM') AS month,
           t.kind,
           COALESCE(SUM(e.amount) FILTER (WHERE e.amount > 0), 0) AS earned,
           COALESCE(-SUM(e.amount) FILTER (WHERE e.amount < 0), 0) AS spent
      FROM ledger_entries e
      JOIN transactions t ON t.id = e.transaction_id
     WHERE e.wallet_id = :wallet_id AND e.created_at >= :since
     GROUP BY 1, 2
     ORDER BY 1, 2
    """
)


@dataclass(frozen=True)
class KindTotals:
    kind: str
    earned: Decimal
    spent: Decimal


@dataclass
class MonthTotals:
    month: str  # "YYYY-MM"
    earned: Decimal = Decimal(0)
    spent: Decimal = Decimal(0)
    by_kind: list[KindTotals] = field(default_factory=list)


def last_months(now: datetime, count: int = MONTHS) -> list[str]:
    """The `count` months up to and including `now`'s, oldest first ("YYYY-MM")."""
    year, month = now.year, now.month
    months = []
    for _ in range(count):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year, month - 1) if month > 1 else (year - 1, 12)
    return months[::-1]


def monthly_totals(
    conn: Connection, wallet_id: uuid.UUID, now: datetime | None = None
) -> list[MonthTotals]:
    """The last twelve months (every one, zeros included), oldest first."""
    months = last_months((now or datetime.now(UTC)).astimezone(UTC))
    first_year, first_month = (int(part) for part in months[0].split("-"))
    since = datetime(first_year, first_month, 1, tzinfo=UTC)
    totals = {month: MonthTotals(month) for month in months}
    for row in conn.execute(_TOTALS, {"wallet_id": wallet_id, "since": since}):
        found = totals.get(row.month)
        if found is None:  # an entry stamped in the future of `now` (clock skew): not shown
            continue
        found.by_kind.append(KindTotals(row.kind, row.earned, row.spent))
        found.earned += row.earned
        found.spent += row.spent
    return list(totals.values())


CHART_WIDTH, CHART_HEIGHT, BAR_GAP = 600, 200, 4
EARNED_COLOUR, SPENT_COLOUR = "#1a7f37", "#b42318"


def chart(months: list[MonthTotals]) -> str:
    """An SVG bar chart, earned and spent side by side per month; decorative (the page's table
    beside it is the text alternative), so it is hidden from assistive technology."""
    largest = max([m.earned for m in months] + [m.spent for m in months] + [Decimal(0)])
    slot = CHART_WIDTH / max(len(months), 1)
    bar = (slot - 3 * BAR_GAP) / 2
    plot = CHART_HEIGHT - 20
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}"'
        ' class="chart" aria-hidden="true" focusable="false">'
    ]
    for index, month in enumerate(months):
        x = index * slot + BAR_GAP
        for offset, value, colour in (
            (0.0, month.earned, EARNED_COLOUR),
            (bar + BAR_GAP, month.spent, SPENT_COLOUR),
        ):
            height = float(value / largest) * plot if largest else 0.0
            parts.append(
                f'<rect x="{x + offset:.1f}" y="{plot - height:.1f}" width="{bar:.1f}"'
                f' height="{height:.1f}" fill="{colour}"/>'
            )
        parts.append(
            f'<text x="{x + bar:.1f}" y="{CHART_HEIGHT - 4}" font-size="11"'
            f' text-anchor="middle" fill="#444">{escape(month.month[5:])}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
