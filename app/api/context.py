"""What API handlers reach the running app's adapters through."""

from __future__ import annotations

from app.bootstrap import wiring
from app.db import Database

__all__ = ["db", "wiring"]


def db() -> Database:
    return wiring().db
