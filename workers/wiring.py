"""The adapters of the Flask app the running task belongs to."""

from flask import current_app

from app.bootstrap import Wiring


def wiring() -> Wiring:
    return current_app.extensions["wallet"]  # type: ignore[no-any-return]
