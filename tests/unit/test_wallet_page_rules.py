"""The wallet page's pure rules: CSRF tokens, loopback cookies, analytics months, the chart,
explorer links and the filter form's dates."""

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from werkzeug.datastructures import MultiDict

from app.api.session import is_loopback
from app.services import analytics, browser_sessions
from app.web import _api_query, explorer_link

SECRET = "s" * 40


def test_a_csrf_token_belongs_to_one_session_and_one_secret() -> None:
    token = browser_sessions.csrf_token(SECRET, "session-a")
    assert browser_sessions.csrf_matches(SECRET, "session-a", token)
    assert not browser_sessions.csrf_matches(SECRET, "session-b", token)
    assert not browser_sessions.csrf_matches("t" * 40, "session-a", token)
    assert not browser_sessions.csrf_matches(SECRET, "session-a", None)
    assert not browser_sessions.csrf_matches(SECRET, "session-a", "")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("localhost:8000", True),
        ("127.0.0.1:5000", True),
        ("[::1]:8000", True),
        ("app.localhost", True),
        ("wallet.example.com", False),
        ("10.0.0.5:8000", False),
    ],
)
def test_only_loopback_hosts_get_a_cookie_without_secure(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_the_last_twelve_months_cross_the_year() -> None:
    months = analytics.last_months(datetime(2026, 2, 14, tzinfo=UTC))
    assert months[0] == "2025-03" and months[-1] == "2026-02" and len(months) == 12


def test_the_chart_draws_a_bar_pair_per_month_scaled_to_the_largest() -> None:
    months = [analytics.MonthTotals(m) for m in analytics.last_months(datetime(2026, 11, 1))]
    months[-1].earned, months[-1].spent = Decimal(10), Decimal(5)
    svg = analytics.chart(months)
    assert svg.startswith("<svg") and svg.count("<rect") == 24
    assert 'height="180.0"' in svg and 'height="90.0"' in svg
    empty = analytics.chart([analytics.MonthTotals("2026-11")])
    assert 'height="0.0"' in empty  # nothing earned or spent: no division by zero


def test_explorer_links_name_public_clusters_and_send_the_local_one_by_url() -> None:
    assert explorer_link("mainnet", "x") == "https://explorer.solana.com/tx/{signature}"
    assert explorer_link("devnet", "x").endswith("?cluster=devnet")
    local = explorer_link("localnet", "http://127.0.0.1:8899")
    assert local.endswith("?cluster=custom&customUrl=http%3A%2F%2F127.0.0.1%3A8899")


def test_the_filter_forms_dates_are_whole_utc_days_to_included() -> None:
    query = _api_query(MultiDict({"since": "2026-11-01", "until": "2026-11-30", "type": ""}))
    assert query == {
        "since": "2026-11-01T00:00:00+00:00",
        "until": "2026-12-01T00:00:00+00:00",
    }
    assert _api_query(MultiDict({"since": "2026-13-01"}))["since"] == "2026-13-01"


def test_a_session_value_round_trips_the_principal() -> None:
    user = uuid.uuid4()
    found = browser_sessions._load(browser_sessions._dump(user, "admin", 60))
    assert found == browser_sessions.BrowserSession(user, "admin", 60)
