"""Accessors for the adapters wired into the running app."""

from __future__ import annotations

from flask import current_app

from app.bootstrap import Wiring
from app.db import Database


def wiring() -> Wiring:
    return current_app.extensions["wallet"]  # type: ignore[no-any-return]


def db() -> Database:
    return wiring().db
