"""The wallet page: server-rendered HTML plus small plain ES modules, under a strict CSP.

The page reads through the same services as the API and acts through the API itself (fetch with
the session cookie and the page's CSRF token), so it has no rules of its own. Without a live
session it shows how to sign in (`make token ARGS="--link"`), never an error.
"""

from __future__ import annotations

import io
import re
from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

import marshmallow as ma
import segno
from flask import Blueprint, Response, redirect, render_template, request

from app.api.auth import SESSION_COOKIE, authenticate, session_id
from app.api.context import wiring
from app.api.schemas import TransactionQuerySchema
from app.api.session import set_session_cookie, start_session
from app.domain.errors import AuthenticationError
from app.domain.transactions import Kind, Status
from app.services import analytics, browser_sessions, history, wallet_page

bp = Blueprint(
    "pages",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/wallet/static",
)

# No inline script or style, nothing from elsewhere; the page talks only to this origin.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)
QR_DATA_MAX = 1024
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
EXPLORER = "https://explorer.solana.com/tx/{signature}"
PUBLIC_CLUSTERS = {"mainnet": "", "mainnet-beta": "", "devnet": "devnet", "testnet": "testnet"}


def explorer_link(chain_id: str, rpc_url: str) -> str:
    """The Solana Explorer's address of a chain transaction, `{signature}` left to fill: the
    public clusters by name, any other (the local cluster) as a custom RPC URL."""
    if chain_id in PUBLIC_CLUSTERS:
        cluster = PUBLIC_CLUSTERS[chain_id]
        return EXPLORER + (f"?cluster={cluster}" if cluster else "")
    return EXPLORER + "?" + urlencode({"cluster": "custom", "customUrl": rpc_url})


@bp.app_template_filter("shorten")
def shorten(value: str | None) -> str:
    """A long id or address as its first and last characters (a full one overflows a phone)."""
    if not value:
        return ""
    return value if len(value) <= 12 else f"{value[:4]}…{value[-4:]}"


@bp.after_request
def _page_headers(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "pages.static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response


@bp.route("/")
def index() -> Any:
    return redirect("/wallet", code=302)


def _session_principal() -> Any | None:
    """The principal of the request's live session cookie, or None (no cookie, or it ended).
    The page needs the cookie (its CSRF token is derived from it): a request carrying an
    Authorization header gets the sign-in page."""
    if session_id() is None:
        return None
    try:
        return authenticate()
    except AuthenticationError:
        return None


@bp.route("/wallet")
def wallet() -> Any:
    principal = _session_principal()
    if principal is None:
        response = Response(render_template("signin.html"), mimetype="text/html")
        if request.cookies.get(SESSION_COOKIE):  # an ended session: forget its cookie
            set_session_cookie(response, "", 0)
        return response
    config = wiring().config
    try:
        args, refused = TransactionQuerySchema().load(_api_query(request.args)), None
    except ma.ValidationError as error:
        args, refused = {"limit": 20}, _first_messages(error.messages)
    filters = history.Filters(
        args.get("type"), args.get("status"), args.get("since"), args.get("until")
    )
    view = wallet_page.page_view(
        wiring(), principal.user_id, principal.wallet_id, filters, args["limit"], args.get("cursor")
    )
    return Response(
        render_template(
            "wallet.html",
            csrf_token=browser_sessions.csrf_token(config.jwt_secret, session_id() or ""),
            user_id=principal.user_id,
            view=view,
            filters=request.args,
            filter_error=refused or view.filter_error,
            kinds=[k.value for k in Kind],
            statuses=[s.value for s in Status],
            chart=analytics.chart(view.months),
            explorer=explorer_link(config.solana_chain_id, config.solana_rpc_url),
        ),
        mimetype="text/html",
    )


def _api_query(args: Any) -> dict[str, str]:
    """The page's filter form as the API's query: its dates are whole UTC days, To included."""
    query = {name: value for name, value in args.items() if value}
    for name, shift in (("since", 0), ("until", 1)):
        value = query.get(name, "")
        if _DATE.fullmatch(value):
            try:
                day = date.fromisoformat(value) + timedelta(days=shift)
            except ValueError:
                continue  # the schema says why
            query[name] = f"{day.isoformat()}T00:00:00+00:00"
    return query


def _first_messages(messages: Any) -> str:
    if isinstance(messages, dict):
        return "; ".join(f"{field}: {_first_messages(m)}" for field, m in messages.items())
    if isinstance(messages, list):
        return ", ".join(str(m) for m in messages)
    return str(messages)


@bp.route("/wallet/login", methods=["GET"])
def login_form() -> Any:
    """A one-time login link lands here. The code is exchanged by the button's POST, not by this
    GET, so a link preview or prefetch cannot use it up."""
    code = request.args.get("code", "")
    return Response(render_template("login.html", code=code), mimetype="text/html")


@bp.route("/wallet/login", methods=["POST"])
def login() -> Any:
    """Exchange the code for a session. Only from this origin's own form: another site posting
    its owner's code would sign the visitor in to the wrong account (login CSRF)."""
    if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
        page = render_template("login.html", code="", error="Sign-in from another site refused")
        return Response(page, status=403, mimetype="text/html")
    try:
        found = browser_sessions.redeem_login_code(
            wiring().redis, request.form.get("code", ""), wiring().config.jwt_max_lifetime_seconds
        )
    except browser_sessions.LoginCodeInvalidError as error:
        page = render_template("login.html", code="", error=error.title)
        return Response(page, status=400, mimetype="text/html")
    response = start_session(found.user_id, found.role, found.ttl_seconds, via="login_link")
    response.status_code = 303
    response.headers["Location"] = "/wallet"
    return response


@bp.route("/wallet/qr.svg")
def qr_code() -> Response:
    """A QR code of a Solana Pay URL (the deposit's), drawn on the server as SVG."""
    data = request.args.get("data", "")
    if not data.startswith("solana:") or len(data) > QR_DATA_MAX:
        return Response("not a Solana Pay URL", status=400, mimetype="text/plain")
    buffer = io.BytesIO()
    segno.make(data, error="m").save(buffer, kind="svg", scale=4, border=2)
    return Response(buffer.getvalue(), mimetype="image/svg+xml")
