"""The browser's session cookie, its CSRF token, one-time login links, and the page's shell."""

import re
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest

from app.api.auth import SESSION_COOKIE
from tests.support import auth, fund, provision, token_for, wait_settled

pytestmark = pytest.mark.usefixtures("worker")
CSRF_META = re.compile(r'<meta name="csrf-token" content="([0-9a-f]{64})">')


def _log_in(client, user):
    response = client.post("/api/session", headers=auth(user))
    assert response.status_code == 204, response.get_data(as_text=True)
    return response


def _csrf(client) -> str:
    page = client.get("/wallet").get_data(as_text=True)
    found = CSRF_META.search(page)
    assert found, page[:500]
    return found.group(1)


def test_a_bearer_token_becomes_an_httponly_lax_cookie_that_lasts_as_long_as_the_token(
    client, user
) -> None:
    token = token_for(user, ttl=timedelta(hours=2))
    response = client.post("/api/session", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 204
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # the test client's host is localhost (loopback)
    max_age = int(re.search(r"Max-Age=([0-9]+)", cookie).group(1))
    assert 7000 <= max_age <= 7200
    assert token not in cookie  # the cookie is a session id, not the token
    # The API now answers the cookie alone.
    overview = client.get("/api/wallet")
    assert overview.status_code == 200


def test_the_cookie_is_secure_off_loopback(client, user) -> None:
    response = client.post("/api/session", headers={**auth(user), "Host": "wallet.example.com"})
    assert response.status_code == 204
    assert "Secure" in response.headers["Set-Cookie"]


def test_unsafe_methods_with_the_cookie_need_the_pages_csrf_token(client, user, app) -> None:
    _log_in(client, user)
    body = {"low_balance_threshold": "5"}
    refused = client.put("/api/wallet/settings", json=body)
    assert refused.status_code == 403
    assert refused.mimetype == "application/problem+json"
    assert refused.get_json()["code"] == "csrf_token_invalid"
    wrong = client.put("/api/wallet/settings", json=body, headers={"X-CSRF-Token": "0" * 64})
    assert wrong.get_json()["code"] == "csrf_token_invalid"
    accepted = client.put(
        "/api/wallet/settings", json=body, headers={"X-CSRF-Token": _csrf(client)}
    )
    assert accepted.status_code == 200, accepted.get_json()
    assert accepted.get_json()["low_balance_threshold"] == "5.000000"


def test_a_bearer_token_needs_no_csrf_token_and_decides_over_a_cookie(client, user) -> None:
    _log_in(client, user)
    other = uuid.uuid4()
    response = client.put(
        "/api/wallet/settings", json={"low_balance_threshold": "7"}, headers=auth(other)
    )
    assert response.status_code == 200
    mine = client.get("/api/wallet/settings").get_json()  # by cookie: the first user's
    assert mine["low_balance_threshold"] is None
    theirs = client.get("/api/wallet/settings", headers=auth(other)).get_json()
    assert theirs["low_balance_threshold"] == "7.000000"


def test_deleting_the_session_ends_it_for_every_copy_of_the_cookie(app, user) -> None:
    browser = app.test_client()
    _log_in(browser, user)
    value = browser.get_cookie(SESSION_COOKIE).value
    copy = app.test_client()
    copy.set_cookie(SESSION_COOKIE, value)
    assert copy.get("/api/wallet").status_code == 200
    refused = browser.delete("/api/session")  # unsafe: the CSRF token is needed here too
    assert refused.status_code == 403
    ended = browser.delete("/api/session", headers={"X-CSRF-Token": _csrf(browser)})
    assert ended.status_code == 204
    assert copy.get("/api/wallet").status_code == 401
    assert browser.get_cookie(SESSION_COOKIE) is None
    assert _audited(app, user) == [("session.started", "bearer"), ("session.ended", None)]


def _audited(app, user):
    from sqlalchemy import select

    from app.models import AuditLog

    with app.extensions["wallet"].db.transaction() as session:
        rows = session.scalars(
            select(AuditLog)
            .where(AuditLog.actor_id == user, AuditLog.action.like("session.%"))
            .order_by(AuditLog.id)
        ).all()
        return [(row.action, row.details.get("via")) for row in rows]


def test_a_cookie_cannot_mint_another_session(client, user) -> None:
    _log_in(client, user)
    response = client.post("/api/session", headers={"X-CSRF-Token": _csrf(client)})
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


def test_service_tokens_get_no_browser_session(client) -> None:
    response = client.post("/api/session", headers=auth(uuid.uuid4(), "service"))
    assert response.status_code == 403


def test_an_unknown_session_cookie_is_401(client) -> None:
    client.set_cookie(SESSION_COOKIE, "not-a-session")
    response = client.get("/api/wallet")
    assert response.status_code == 401
    assert response.get_json()["code"] == "unauthorized"


def test_a_login_link_signs_in_once_and_never_carries_the_token(app, user) -> None:
    result = app.test_cli_runner().invoke(
        args=["users", "token", str(user), "--link", "--base-url", "http://127.0.0.1:8000"]
    )
    assert result.exit_code == 0, result.output
    link = result.output.strip()
    assert link.startswith("http://127.0.0.1:8000/wallet/login?code=")
    assert "eyJ" not in link  # no JWT in the URL
    code = link.split("code=", 1)[1]
    browser = app.test_client()
    landing = browser.get(f"/wallet/login?code={code}")  # a prefetch of the link uses nothing
    assert landing.status_code == 200 and browser.get_cookie(SESSION_COOKIE) is None
    signed_in = browser.post("/wallet/login", data={"code": code})
    assert signed_in.status_code == 303 and signed_in.headers["Location"] == "/wallet"
    assert browser.get_cookie(SESSION_COOKIE) is not None
    page = browser.get("/wallet").get_data(as_text=True)
    assert str(user) in page
    assert _audited(app, user) == [("session.started", "login_link")]
    again = app.test_client().post("/wallet/login", data={"code": code})
    assert again.status_code == 400
    assert again.headers.get("Set-Cookie") is None


def test_a_login_form_posted_from_another_site_is_refused_and_keeps_the_code(app, user) -> None:
    result = app.test_cli_runner().invoke(args=["users", "token", str(user), "--link"])
    code = result.output.strip().split("code=", 1)[1]
    browser = app.test_client()
    refused = browser.post(
        "/wallet/login", data={"code": code}, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert refused.status_code == 403 and browser.get_cookie(SESSION_COOKIE) is None
    own = browser.post(
        "/wallet/login", data={"code": code}, headers={"Sec-Fetch-Site": "same-origin"}
    )
    assert own.status_code == 303 and browser.get_cookie(SESSION_COOKIE) is not None


def test_the_root_redirects_to_the_page_and_the_page_sends_a_strict_csp(client, user) -> None:
    assert client.get("/").headers["Location"].endswith("/wallet")
    signed_out = client.get("/wallet")
    assert signed_out.status_code == 200
    assert 'make token ARGS="--link"' in signed_out.get_data(as_text=True)
    _log_in(client, user)
    page = client.get("/wallet")
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    html = page.get_data(as_text=True)
    assert "<script>" not in html and '<script type="module" src=' in html
    for name in ("Balance", "Send tokens", "Transactions", "Earned and spent", "Notifications"):
        assert f">{name}</h2>" in html, name


def test_the_page_shows_the_balance_and_history_from_the_server(app, client, user) -> None:
    fund(app, user, "25")
    _log_in(client, user)
    html = client.get("/wallet").get_data(as_text=True)
    assert 'id="balance">25.000000</p>' in html
    row = '<td class="amount credit">+25.000000</td>\n  <td>reward</td>'
    assert row in html
    filtered = client.get("/wallet?type=transfer").get_data(as_text=True)
    assert row not in filtered and '<p id="empty-history" class="muted" >' in filtered
    bad = client.get("/wallet?type=nonsense")
    assert bad.status_code == 200 and "Must be one of" in bad.get_data(as_text=True)


def test_analytics_sums_completed_money_per_month_and_kind(app, client, db, user) -> None:
    fund(app, user, "40")
    other = uuid.uuid4()
    provision(app, other)
    tx = client.post(
        "/api/wallet/transfer",
        json={"recipient_id": str(other), "amount": "15"},
        headers={**auth(user), "Idempotency-Key": str(uuid.uuid4())},
    ).get_json()["transaction_id"]
    wait_settled(db, [tx])
    response = client.get("/api/wallet/analytics", headers=auth(user))
    assert response.status_code == 200
    months = response.get_json()["months"]
    assert len(months) == 12
    this_month = months[-1]
    assert (this_month["earned"], this_month["spent"]) == ("40.000000", "15.000000")
    by_kind = {k["kind"]: (k["earned"], k["spent"]) for k in this_month["by_kind"]}
    assert by_kind == {"reward": ("40.000000", "0.000000"), "transfer": ("0.000000", "15.000000")}
    assert all(Decimal(m["earned"]) == 0 for m in months[:-1])
    received = client.get("/api/wallet/analytics", headers=auth(other)).get_json()["months"][-1]
    assert received["earned"] == "15.000000"


def test_the_analytics_query_uses_the_wallet_time_index(app, db, user) -> None:
    from sqlalchemy import text

    from app.services.analytics import _TOTALS

    wallet_id = provision(app, user)
    # One transaction: SET LOCAL lasts until its end (on an autocommit connection it would end
    # with its own statement, and a tiny table would be scanned instead).
    with db.transaction() as session:
        session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = "\n".join(
            row[0]
            for row in session.execute(
                text(f"EXPLAIN {_TOTALS.text}"), {"wallet_id": wallet_id, "since": "2026-01-01"}
            )
        )
    assert "ix_ledger_entries_wallet_id_created_at" in plan, plan


def test_the_qr_code_is_an_svg_of_a_solana_pay_url_only(client) -> None:
    good = client.get("/wallet/qr.svg?data=solana:abc%3Famount%3D1")
    assert good.status_code == 200 and good.mimetype == "image/svg+xml"
    assert good.get_data(as_text=True).lstrip().startswith("<?xml") or b"<svg" in good.data
    assert client.get("/wallet/qr.svg?data=https://evil.example").status_code == 400
