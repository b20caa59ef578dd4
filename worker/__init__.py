"""The background worker: `python -m worker` runs RQ on every queue the portal declares."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from flask import Flask, current_app, has_app_context

F = TypeVar("F", bound=Callable[..., Any])

_app: Flask | None = None


def app() -> Flask:
    """The worker's app, built once per process (before RQ forks, so children share it)."""
    global _app
    if _app is None:
        from portal import create_app

        _app = create_app()
    return _app


def job(fn: F) -> F:
    """Run a job in a fresh app context: its own session, removed when it ends.

    Inline (no Redis) the caller's app is reused; under RQ the worker's app is.
    """

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flask_app = current_app._get_current_object() if has_app_context() else app()  # type: ignore[attr-defined]
        with flask_app.app_context():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]
