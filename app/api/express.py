"""The express lane: the two busiest requests, POST /api/wallet/transfer and GET /api/wallet,
answered without Flask's request machinery, in their common form only; every other request, and
every request the lane has any doubt about, goes to the Flask app unchanged.

Why: measured per request (gunicorn worker CPU from /proc over a wrk run, bench/api.py's load),
Flask's request context, hooks, URL routing, flask-smorest's and webargs' wrappers cost about as
much as accepting a transfer itself: see the README's benchmark section for the figures.

What the lane answers itself: a bearer-authenticated user or admin, within the rate limit,
sending either a transfer (a JSON body that `TransferRequestSchema` accepts, a valid
Idempotency-Key, no `Prefer` header) or a plain GET of the wallet. It does the full path's work
with the full path's functions: the token check (`decode_token`), the provisioner, the same
rate-limit count, the same validation and fingerprint, `transfers.transfer` (one statement) or
`wallets.overview` (one query), the same answer (`reply` / `overview_body`, or the problem+json
of a refusal through `problems.wallet_error`), the same request id, access log line and metrics.
tests/integration/test_express_lane.py compares its answers with the full path's.

Everything else is handed to the full path, which decides as if the lane did not exist: no
token or a bad one, a session cookie (CSRF), malformed or invalid input, `Prefer: wait`, a
reserved subject, another role. The lane hands over before it has changed anything, except in
two cases, where what it did is passed along so nothing happens twice:
- the request was counted and is over the limit: the full path gets the count (`COUNTED`) and
  answers 429 with the same headers;
- something unexpected failed after counting: the full path gets the count and the request id
  and runs the request again. Accepting is one statement keyed by the Idempotency-Key, so a
  request whose statement did commit is then answered as a replay, never accepted twice.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

import redis
from flask import Flask, Response

from app import logs
from app.api import observability, problems
from app.api.auth import IDENTITY, bearer_token_of, decode_token
from app.api.http import reply
from app.api.ratelimit import COUNTED, Window
from app.api.schemas import TransferRequestSchema
from app.api.wallet import WALLET_ROLES, overview_response, send_transfer
from app.domain.accounts import is_reserved
from app.domain.errors import AuthenticationError, WalletError
from app.services import audit, idempotency, movement, transfers

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

log = logging.getLogger(__name__)

TRANSFER = ("POST", "/api/wallet/transfer")
WALLET = ("GET", "/api/wallet")

Answer = Callable[[], Response]  # the request's work, once it is admitted and counted


class ExpressLane:
    """WSGI middleware in front of the Flask app (`create_app` installs it)."""

    def __init__(self, app: Flask, full: WSGIApplication) -> None:
        self.app = app
        self.full = full
        self.wiring = app.extensions["wallet"]
        self.rules = app.extensions["token_rules"]
        self.limits = app.extensions["limiter"]
        self.max_body = int(app.config["MAX_CONTENT_LENGTH"])
        self.schema = TransferRequestSchema()
        # The Flask rule of each route: the rate-limit window is named after its endpoint, the
        # access log and metrics after its pattern, as on the full path.
        urls = app.url_map.bind("localhost")
        self.rules_of = {
            route: urls.match(route[1], route[0], return_rule=True)[0]
            for route in (TRANSFER, WALLET)
        }

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        route = (environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", ""))
        rule = self.rules_of.get(route)
        if rule is None:
            return self.full(environ, start_response)
        endpoint = rule.endpoint
        started = time.perf_counter()
        try:
            admitted = self._admit(route, environ)
        except Exception:  # noqa: BLE001 - anything unusual is the full path's to answer
            admitted = None
        if admitted is None:
            return self.full(environ, start_response)
        caller, answer = admitted
        try:
            counted = self.limits.count(endpoint, f"user:{caller.user_id}")
        except redis.RedisError:
            return self.full(environ, start_response)  # it counts again, or answers 503
        item = self.limits.item_for(endpoint)
        request_id = observability.request_id_for(environ.get("HTTP_X_REQUEST_ID", ""))
        ip = environ.get("REMOTE_ADDR")
        if counted[0] > item.amount:
            return self._hand_over(environ, start_response, counted, request_id)
        request_token = logs.request_id.set(request_id)
        ip_token = audit.client_ip.set(ip)
        try:
            try:
                response = answer()
            except WalletError as error:  # refused (or 503): the full path's problem+json
                with self.app.request_context(environ):
                    response = problems.wallet_error(error)
            except Exception as exc:  # noqa: BLE001 - the full path runs it again and answers
                log.warning("express lane failed (%r), handing the request over", exc)
                return self._hand_over(environ, start_response, counted, request_id)
            response.headers["X-Request-ID"] = request_id
            response.headers.update(Window.of(item, *counted).headers())
            elapsed = time.perf_counter() - started
            observability.record(
                route[0], route[1], rule.rule, response.status_code, elapsed, caller.user_id, ip
            )
        finally:
            audit.client_ip.reset(ip_token)
            logs.request_id.reset(request_token)
        return response(environ, start_response)

    def _admit(
        self, route: tuple[str, str], environ: WSGIEnvironment
    ) -> tuple[movement.Caller, Answer] | None:
        """The caller and the request's work, when this is a request the lane answers; None
        otherwise."""
        if route == TRANSFER and not self._plain_json(environ):
            return None
        caller = self._caller(environ)
        if caller is None:
            return None
        if route == WALLET:
            return caller, lambda: overview_response(self.wiring, caller.wallet_id)
        length = int(environ["CONTENT_LENGTH"])
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # for the full path, should it answer
        args = self.schema.load(json.loads(body.decode("utf-8")))  # as webargs parses it
        key = idempotency.validate_key(environ.get("HTTP_IDEMPOTENCY_KEY"))
        idem = transfers.Idempotency(key, idempotency.fingerprint(*TRANSFER, args))
        return caller, lambda: reply(send_transfer(self.wiring, caller, idem, args))

    def _plain_json(self, environ: WSGIEnvironment) -> bool:
        """A JSON body of a sane length, without `Prefer` (webargs reads bodies as JSON only
        when they say they are JSON)."""
        if "HTTP_PREFER" in environ or "HTTP_TRANSFER_ENCODING" in environ:
            return False
        mimetype = environ.get("CONTENT_TYPE", "").partition(";")[0].strip().lower()
        length = int(environ.get("CONTENT_LENGTH") or "-1")
        return mimetype == "application/json" and 0 < length <= self.max_body

    def _caller(self, environ: WSGIEnvironment) -> movement.Caller | None:
        """A bearer-authenticated user or admin (provisioned on first use, as `authenticate`
        does); None for anything else."""
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            return None  # a session cookie (CSRF), or no credentials
        config = self.wiring.config
        try:
            token = bearer_token_of(header)
            user_id, role = decode_token(
                config.jwt_secret, token, config.jwt_leeway_seconds, rules=self.rules
            )
        except AuthenticationError as refused:
            environ[IDENTITY] = refused  # the full path answers it without decoding it again
            return None
        if role not in WALLET_ROLES or is_reserved(user_id):
            return None
        return movement.Caller(user_id, self.wiring.provisioner.wallet_id_for(user_id, role))

    def _hand_over(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        counted: tuple[int, int],
        request_id: str,
    ) -> Iterable[bytes]:
        """The full path answers a request the lane has already counted, under the same id."""
        environ[COUNTED] = counted
        environ["HTTP_X_REQUEST_ID"] = request_id
        return self.full(environ, start_response)
