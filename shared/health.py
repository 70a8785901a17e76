"""``/healthz`` (the process answers) and ``/readyz`` (its dependencies answer).

Services register readiness checks with :func:`add_check`; a check returns nothing when all is
well and raises when not. ``/readyz`` answers 503 problem+json naming the failing checks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from flask import Blueprint, Flask, Response, current_app, jsonify

from shared.errors import ServiceUnavailable

log = logging.getLogger(__name__)

EXTENSION = "trace30.health"

Check = Callable[[], None]

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    """Liveness: the process serves requests."""
    return jsonify(status="ok", service=current_app.name)


@bp.get("/readyz")
def readyz() -> Response:
    """Readiness: every registered check passes."""
    checks: dict[str, Check] = current_app.extensions[EXTENSION]
    results: dict[str, str] = {}
    for name, check in checks.items():
        try:
            check()
            results[name] = "ok"
        except Exception as e:  # a readiness probe reports any failure, it must not raise
            log.warning("readiness check failed", extra={"check": name, "error": type(e).__name__})
            results[name] = "failing"
    failing = sorted(n for n, r in results.items() if r != "ok")
    if failing:
        raise ServiceUnavailable(
            "Not ready: " + ", ".join(failing), errors={n: [results[n]] for n in failing}
        )
    return jsonify(status="ready", checks=results)


def add_check(app: Flask, name: str, check: Check) -> None:
    """Make ``/readyz`` of ``app`` depend on ``check``."""
    app.extensions[EXTENSION][name] = check


def init_app(app: Flask) -> None:
    """Serve the health routes on ``app``."""
    app.extensions[EXTENSION] = {}
    app.register_blueprint(bp)
