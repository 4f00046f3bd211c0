"""The wallet page in a real browser (Debian Chromium via Playwright) against the real stack:
gunicorn, the Celery worker, PostgreSQL, Redis and the local Solana cluster. External wallets
are fakes injected into the page that sign with real ed25519 keys (tests/e2e/browser.py)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
from solders.pubkey import Pubkey
from sqlalchemy import text

from app.services import transfers, withdrawals
from tests.chain_support import funded_wallet, pay, token_account, token_balance
from tests.e2e.browser import DESKTOP, PHONE, SCREENSHOTS, FakeWallet, chromium_path
from tests.e2e.conftest import gunicorn
from tests.support import fund, provision, reward, token_for, wait_until

pytestmark = pytest.mark.usefixtures("worker")
FINALITY = 33
# Records every status a row of the Transactions table shows, so a test can see "Pending" even
# when settlement is faster than an assertion could look.
STATUS_LOG = """
window.__statuses = [];
new MutationObserver(() => {
  for (const cell of document.querySelectorAll('#transaction-rows td.status')) {
    const entry = cell.closest('tr').dataset.id + ' ' + cell.textContent;
    if (!window.__statuses.includes(entry)) window.__statuses.push(entry);
  }
}).observe(document, { subtree: true, childList: true, characterData: true });
"""


@pytest.fixture(scope="module")
def site() -> Iterator[str]:
    with gunicorn(SSE_HEARTBEAT_SECONDS="1") as url:
        yield url


@pytest.fixture(scope="module")
def browser(site: str) -> Iterator[Browser]:
    """Closed before the site stops, so no connection of it holds gunicorn's shutdown."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=chromium_path())
        yield launched
        launched.close()


def _said(message: Any) -> str:
    return f"{message.text} ({message.location.get('url', '')})"


class Visitor:
    """One user's browser context, logged in through POST /api/session, its console watched."""

    def __init__(self, browser: Browser, site: str, user: uuid.UUID, **options: Any) -> None:
        self.user = user
        self.site = site
        self.context: BrowserContext = browser.new_context(base_url=site, **options)
        self.context.add_init_script(STATUS_LOG)
        self.errors: list[str] = []

    def log_in(self) -> Visitor:
        response = self.context.request.post(
            "/api/session", headers={"Authorization": f"Bearer {token_for(self.user)}"}
        )
        assert response.status == 204, response.text()
        return self

    def open(self) -> Page:
        page = self.context.new_page()
        page.on("console", lambda m: self.errors.append(_said(m)) if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        response = page.goto("/wallet")
        assert response is not None and response.status == 200
        return page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visitors(browser: Browser, site: str) -> Iterator[Any]:
    opened: list[Visitor] = []

    def visit(user: uuid.UUID | None = None, **options: Any) -> Visitor:
        visitor = Visitor(browser, site, user or uuid.uuid4(), **options)
        opened.append(visitor)
        return visitor

    yield visit
    for visitor in opened:
        visitor.close()


def balance_of(page: Page) -> Any:
    return page.get_by_role("status", name="Balance")


def row(page: Page, tx_id: str) -> Any:
    return page.get_by_role("table", name="Transactions").locator(f'tr[data-id="{tx_id}"]')


def send(page: Page, recipient: uuid.UUID, amount: str, note: str = "") -> None:
    form = page.get_by_role("form", name="Send tokens")
    form.get_by_label("Recipient").fill(str(recipient))
    form.get_by_label("Amount").fill(amount)
    form.get_by_label("Note").fill(note)
    form.get_by_role("button", name="Send").click()


def test_send_tokens_shows_pending_then_completed_and_both_balances_move_live(
    app, visitors
) -> None:
    alice, bob = uuid.uuid4(), uuid.uuid4()
    fund(app, alice, "100")
    provision(app, bob)
    sender = visitors(alice, viewport=DESKTOP).log_in()
    receiver = visitors(bob, viewport=PHONE).log_in()
    alice_page, bob_page = sender.open(), receiver.open()
    expect(balance_of(alice_page)).to_have_text("100.000000")
    expect(balance_of(bob_page)).to_have_text("0.000000")
    expect(bob_page.get_by_text("No transactions yet.")).to_be_visible()

    send(alice_page, bob, "12.5", "lunch")
    first = alice_page.locator("#transaction-rows tr", has_text="lunch")
    expect(first.locator("td.status")).to_have_text("Completed", timeout=15000)
    tx_id = first.get_attribute("data-id")
    statuses = alice_page.evaluate("window.__statuses")
    assert f"{tx_id} Pending" in statuses and f"{tx_id} Completed" in statuses, statuses
    expect(first).to_contain_text("-12.500000")
    expect(first).to_contain_text("lunch")
    # No reload on either side: the stream (or polling) moved both balances.
    expect(balance_of(alice_page)).to_have_text("87.500000", timeout=15000)
    expect(balance_of(bob_page)).to_have_text("12.500000", timeout=15000)
    expect(row(bob_page, str(tx_id))).to_contain_text("+12.500000", timeout=15000)
    sender_shown = f"{str(alice)[:4]}…{str(alice)[-4:]}"
    expect(row(bob_page, str(tx_id)).locator("td.party")).to_have_text(sender_shown)
    expect(row(bob_page, str(tx_id)).locator("td.after")).to_have_text("12.500000")
    expect(bob_page.locator("#unread-count")).not_to_have_text("0", timeout=15000)

    # Validation errors from problem+json appear next to the field.
    send(alice_page, uuid.uuid4(), "abc")
    expect(alice_page.locator("#send-amount-error")).not_to_be_empty()
    # The browser logs the refused request itself; nothing else went wrong.
    assert [e for e in sender.errors if "status of 422" not in e] == [], sender.errors

    alice_page.screenshot(path=str(SCREENSHOTS / "wallet-1280x800.png"))
    bob_page.screenshot(path=str(SCREENSHOTS / "wallet-390x844.png"))
    alice_page.screenshot(path=str(SCREENSHOTS / "wallet-1280x800-full.png"), full_page=True)
    bob_page.screenshot(path=str(SCREENSHOTS / "wallet-390x844-full.png"), full_page=True)


def test_the_session_cookie_is_hidden_from_scripts_csrf_is_required_and_csp_is_strict(
    visitors,
) -> None:
    visitor = visitors().log_in()
    page = visitor.context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(_said(m)) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    response = page.goto("/wallet")
    assert response is not None
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "wallet_session" not in page.evaluate("document.cookie")
    assert any(c["name"] == "wallet_session" and c["httpOnly"] for c in visitor.context.cookies())
    statuses = page.evaluate(
        """async () => {
          const put = (headers) => fetch('/api/wallet/settings', { method: 'PUT',
            headers: { 'Content-Type': 'application/json', ...headers },
            body: JSON.stringify({ low_balance_threshold: '3' }) });
          const without = await put({});
          const csrf = document.querySelector('meta[name="csrf-token"]').content;
          const withToken = await put({ 'X-CSRF-Token': csrf });
          return [without.status, (await without.json()).code, withToken.status];
        }"""
    )
    assert statuses == [403, "csrf_token_invalid", 200]
    page.reload()
    expect(page.get_by_label("Low-balance alert threshold")).to_have_value("3.000000")
    assert [e for e in errors if "403" not in e] == [], errors


def test_a_standard_wallet_connects_stays_connected_after_reload_and_disconnects(
    visitors,
) -> None:
    visitor = visitors().log_in()
    wallet = FakeWallet()
    wallet.install(visitor.context)
    page = visitor.open()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    expect(page.locator("#connected-address")).to_have_text(
        f"{wallet.address[:4]}…{wallet.address[-4:]}"
    )
    # The wallet signed the server's challenge naming this page's host and port.
    host = urlparse(visitor.site).netloc
    assert wallet.signed[0].decode().startswith(f"{host} wants you to sign in")
    page.reload()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    page.get_by_role("button", name="Disconnect").click()
    expect(page.get_by_role("button", name="Connect wallet")).to_be_visible()
    page.reload()
    expect(page.get_by_role("button", name="Connect wallet")).to_be_visible()
    assert visitor.errors == [], visitor.errors


def test_without_a_wallet_the_page_says_so_and_an_expired_challenge_is_explained(
    visitors, wiring
) -> None:
    bare = visitors().log_in().open()
    bare.get_by_role("button", name="Connect wallet").click()
    expect(bare.get_by_text("No Solana wallet found in this browser.")).to_be_visible()

    visitor = visitors().log_in()
    wallet = FakeWallet()

    def expire_the_challenge() -> None:  # the user took longer than its five minutes
        with wiring.db.transaction() as session:
            session.execute(
                text(
                    "UPDATE wallet_challenges SET expires_at = now() - interval '1 second'"
                    " WHERE user_id = :u"
                ),
                {"u": visitor.user},
            )

    wallet.before_signing = expire_the_challenge
    wallet.install(visitor.context)
    page = visitor.open()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text("The sign-in request expired.")).to_be_visible()
    wallet.before_signing = None
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    page.set_viewport_size(PHONE)
    page.screenshot(path=str(SCREENSHOTS / "wallet-connected-390x844.png"))


def test_the_legacy_phantom_provider_connects_too(visitors) -> None:
    visitor = visitors().log_in()
    wallet = FakeWallet()
    wallet.install(visitor.context, legacy=True)
    page = visitor.open()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    assert page.locator("#connected-address").get_attribute("title") == wallet.address
    assert visitor.errors == [], visitor.errors


def test_with_two_wallets_a_chooser_offers_each_by_name(visitors) -> None:
    visitor = visitors().log_in()
    standard, legacy = FakeWallet("Backpack"), FakeWallet()
    standard.install(visitor.context)
    visitor.context.add_init_script(
        "window.solana = { isPhantom: false, connect: async () => { throw "
        "Object.assign(new Error('User rejected the request.'), { code: 4001 }); },"
        " signMessage: async () => { throw new Error('unreachable'); } };"
    )
    page = visitor.open()
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Solana wallet").click()
    expect(page.get_by_text("Request rejected in the wallet")).to_be_visible()
    page.get_by_role("button", name="Connect wallet").click()
    page.get_by_role("button", name="Backpack").click()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    assert legacy.signed == []


def test_a_deposit_shows_a_qr_code_and_completes_when_paid_on_chain(visitors, solana) -> None:
    visitor = visitors().log_in()
    page = visitor.open()
    form = page.get_by_role("form", name="Deposit")
    form.get_by_label("Amount").fill("7.25")
    form.get_by_role("button", name="Request deposit").click()
    qr = page.get_by_role("img", name="QR code of the Solana Pay payment link")
    expect(qr).to_be_visible()
    wait_until(lambda: page.evaluate("document.getElementById('deposit-qr').naturalWidth") > 0)
    page.set_viewport_size(DESKTOP)
    page.get_by_role("region", name="Deposit").screenshot(
        path=str(SCREENSHOTS / "wallet-deposit-qr.png")
    )
    url = urlparse(page.locator("#deposit-url").text_content() or "")
    query = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert url.scheme == "solana" and query["amount"] == "7.25"
    payer = funded_wallet(solana, "50")
    pay(
        solana,
        payer,
        recipient=Pubkey.from_string(url.path),
        amount=Decimal("7.25"),
        reference=query["reference"],
        memo=query["memo"],
    )
    solana.advance(FINALITY)
    expect(row(page, query["memo"]).locator("td.status")).to_have_text("Completed", timeout=30000)
    expect(balance_of(page)).to_have_text("7.250000", timeout=15000)
    expect(page.locator("#deposit-status")).to_have_text("Deposit completed.")
    assert visitor.errors == [], visitor.errors


def test_a_withdrawal_to_the_connected_wallet_completes_on_chain(
    app, visitors, solana, wiring
) -> None:
    user = uuid.uuid4()
    fund(app, user, "30")
    visitor = visitors(user).log_in()
    wallet = FakeWallet()
    token_account(solana, wallet.keypair.pubkey())
    wallet.install(visitor.context)
    page = visitor.open()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    with wiring.db.transaction() as session:  # connected long ago: past the new-address cooldown
        session.execute(
            text(
                "UPDATE wallets SET address_connected_at = now() - interval '2 days'"
                " WHERE user_id = :u"
            ),
            {"u": user},
        )
    form = page.get_by_role("form", name="Withdraw")
    form.get_by_label("Amount").fill("4")
    form.get_by_role("button", name="Withdraw").click()
    expect(page.locator("#withdraw-summary")).to_have_text(f"Withdraw 4 to {wallet.address}?")
    page.get_by_role("button", name="Confirm withdrawal").click()
    expect(page.locator("#withdraw-status")).to_have_text("Withdrawal pending.")
    tx_id = page.locator("#transaction-rows tr").first.get_attribute("data-id")
    assert tx_id is not None
    wait_until(lambda: token_balance(solana, wallet.keypair.pubkey()) == Decimal(4), timeout=30)
    solana.advance(FINALITY)
    wait_until(
        lambda: (
            withdrawals.process(wiring, app.extensions["wallet"].system, uuid.UUID(tx_id))
            in ("completed", "noop")
        ),
        timeout=30,
    )
    expect(row(page, tx_id).locator("td.status")).to_have_text("Completed", timeout=30000)
    expect(balance_of(page)).to_have_text("26.000000", timeout=15000)
    explorer = row(page, tx_id).get_by_role("link", name="Explorer")
    link = urlparse(explorer.get_attribute("href") or "")
    assert link.netloc == "explorer.solana.com" and link.path.startswith("/tx/")
    assert parse_qs(link.query)["cluster"] == ["custom"]  # the local cluster, by its RPC URL
    assert visitor.errors == [], visitor.errors


def test_filters_load_more_and_the_months_totals(app, visitors) -> None:
    user = uuid.uuid4()
    reward(app, [transfers.RewardItem(user, Decimal(i), f"reward {i}") for i in range(1, 24)])
    page = visitors(user, viewport=DESKTOP).log_in().open()
    table = page.get_by_role("table", name="Transactions")
    expect(table.locator("tbody tr")).to_have_count(20)
    page.get_by_role("button", name="Load more").click()
    expect(table.locator("tbody tr")).to_have_count(23)
    expect(page.get_by_role("button", name="Load more")).to_be_hidden()
    analytics = page.get_by_role("region", name="Earned and spent")
    month = analytics.get_by_role("table").locator("tbody tr").first
    expect(month).to_contain_text("276.000000")  # 1 + 2 + … + 23
    page.get_by_label("Type").select_option("transfer")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_text("No transactions yet.")).to_be_visible()
    page.get_by_label("Type").select_option("reward")
    page.get_by_label("Status").select_option("completed")
    page.get_by_role("button", name="Filter").click()
    expect(table.locator("tbody tr")).to_have_count(20)
    assert re.search(r"type=reward", page.url)


def test_notifications_mark_all_read_and_the_alert_threshold_saves(app, visitors) -> None:
    user = uuid.uuid4()
    fund(app, user, "50")  # above the default alert threshold: no low-balance alert comes later
    page = visitors(user).log_in().open()
    notifications = page.get_by_role("region", name="Notifications")
    expect(notifications.get_by_text("reward received 50.000000")).to_be_visible()
    expect(page.locator("#unread-count")).to_have_text("1")
    notifications.get_by_role("button", name="Mark all read").click()
    expect(page.locator("#unread-count")).to_have_text("0")
    alerts = page.get_by_role("form", name="Alerts")
    alerts.get_by_label("Low-balance alert threshold").fill("-1")
    alerts.get_by_role("button", name="Save").click()
    expect(page.locator("#threshold-error")).not_to_be_empty()
    alerts.get_by_label("Low-balance alert threshold").fill("2.5")
    alerts.get_by_role("button", name="Save").click()
    expect(page.locator("#settings-status")).to_have_text("Saved: alert below 2.500000.")


def test_a_one_time_login_link_signs_the_browser_in(app, browser, site) -> None:
    user = uuid.uuid4()
    fund(app, user, "3")
    printed = app.test_cli_runner().invoke(
        args=["users", "token", str(user), "--link", "--base-url", site]
    )
    assert printed.exit_code == 0, printed.output
    context = browser.new_context(viewport=PHONE)
    try:
        page = context.new_page()
        page.goto(printed.output.strip())
        page.get_by_role("button", name="Sign in").click()
        expect(balance_of(page)).to_have_text("3.000000")
        assert urlparse(page.url).path == "/wallet"
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_text('make token ARGS="--link"')).to_be_visible()
    finally:
        context.close()


def test_a_high_value_transfer_is_confirmed_by_the_connected_wallet(visitors, app, db) -> None:
    """Step-up (issue 12): at or above the user's own step-up amount the server asks for the
    connected wallet's signature; the page has the wallet sign and the transfer completes."""
    visitor = visitors().log_in()
    fund(app, visitor.user, "100")
    recipient = uuid.uuid4()
    provision(app, recipient)
    wallet = FakeWallet()
    wallet.install(visitor.context)
    page = visitor.open()
    page.get_by_role("button", name="Connect wallet").click()
    expect(page.get_by_text("Connected", exact=True)).to_be_visible()
    lowered = visitor.context.request.put(
        "/api/wallet/settings",
        data={"step_up_amount": "5"},
        headers={"Authorization": f"Bearer {token_for(visitor.user)}"},
    )
    assert lowered.status == 200, lowered.text()

    send(page, recipient, "7.5", "big one")
    expect(page.locator("#send-status")).to_have_text("Transfer completed.", timeout=20_000)
    confirmation = wallet.signed[-1].decode()
    assert "7.5" in confirmation and str(recipient) in confirmation
    expect(balance_of(page)).to_have_text("92.500000")
    with db.transaction() as session:
        stage = session.scalar(
            text(
                "SELECT details->'confirmation'->>'address' FROM transactions WHERE note = :n"
                " AND kind = 'transfer' ORDER BY created_at DESC LIMIT 1"
            ),
            {"n": "big one"},
        )
    assert stage == wallet.address
    assert visitor.errors == [], visitor.errors
