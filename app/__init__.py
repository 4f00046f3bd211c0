"""The Flask application factory."""

from __future__ import annotations

from flask import Flask, request
from swagger_ui_bundle import swagger_ui_path
from werkzeug.middleware.proxy_fix import ProxyFix

from app.api import (
    admin,
    auth,
    chain,
    connections,
    express,
    health,
    internal,
    notifications,
    observability,
    problems,
    ratelimit,
    session,
    settings,
    wallet,
)
from app.bootstrap import bootstrap
from app.config import Config, refuse_insecure
from app.domain.errors import WalletError
from app.web import bp as pages_bp

API_TITLE = "Token wallet API"


class MalformedJsonError(WalletError):
    code = "malformed_json"
    status = 400
    title = "Request body is not valid JSON"


def create_app(config: Config | None = None) -> Flask:
    config = config or Config.from_env()
    refuse_insecure(config)  # the API, the Celery worker and beat all start here
    app = Flask(__name__, static_folder=swagger_ui_path, static_url_path="/api/docs/static")
    app.config.update(
        API_TITLE=API_TITLE,
        API_VERSION="v1",
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/api",
        OPENAPI_JSON_PATH="openapi.json",
        OPENAPI_SWAGGER_UI_PATH="docs",
        OPENAPI_SWAGGER_UI_URL="/api/docs/static/",
        MAX_CONTENT_LENGTH=1024 * 1024,
        JSON_SORT_KEYS=False,
    )
    wiring = bootstrap(config)
    app.extensions["wallet"] = wiring
    app.extensions["token_rules"] = auth.TokenRules.of(config)

    api = problems.ProblemApi(app)
    api.spec.components.security_scheme(
        "bearerAuth", {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    )
    api.register_blueprint(wallet.bp)
    api.register_blueprint(internal.bp)
    api.register_blueprint(chain.bp)
    api.register_blueprint(notifications.bp)
    api.register_blueprint(connections.bp)
    api.register_blueprint(settings.bp)
    settings.document_bounds(api.spec, config)
    api.register_blueprint(admin.bp)
    api.register_blueprint(session.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(pages_bp)
    problems.register(app)
    observability.register(app)
    app.extensions["limiter"] = ratelimit.install(app, config)
    app.before_request(_reject_malformed_json)
    app.wsgi_app = express.ExpressLane(app, app.wsgi_app)  # type: ignore[method-assign]
    if config.trusted_proxies:
        # Rate limits, the failed-authentication counter, audit entries and logs then see the
        # client's address instead of the proxy's. Without trusted proxies, a client's own
        # X-Forwarded-For is ignored (it would choose its rate-limit key and audited IP).
        hops = config.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops)  # type: ignore[method-assign]

    from app import cli

    cli.register(app)
    return app


# The wallet page's own HTML form (the one-time login link's button) posts form data, not JSON.
FORM_ENDPOINTS = frozenset({"pages.login"})


def _reject_malformed_json() -> None:
    """Before authentication and validation: a body that is not JSON is a 400. So is JSON nested
    too deeply for the parser (`[` × 100,000 raises RecursionError, not ValueError)."""
    if request.endpoint in FORM_ENDPOINTS:
        return
    if request.method in ("POST", "PUT", "PATCH") and request.content_length:
        try:
            parsed = request.get_json(force=True, silent=True)
        except RecursionError:
            raise MalformedJsonError("JSON nested too deeply") from None
        if parsed is None:
            raise MalformedJsonError()
