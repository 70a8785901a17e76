"""What every register route of the simulator shares: the knobs gate.

:func:`gate` runs before every request under a register's path prefix (an app-wide
``before_request``, so unknown paths under the prefix behave like the register's): it counts
the call, sleeps ``latency_ms``, answers 429 with ``Retry-After`` past ``rate_limit`` requests
per second, and answers ``fail`` (500 with a JSON body, or 503 with an HTML gateway page).
"""

from __future__ import annotations

import time

from flask import Response, current_app, jsonify, request

from .state import SimulatorState

GATEWAY_PAGE = (
    "<html><head><title>503 Service Temporarily Unavailable</title></head>"
    "<body><center><h1>503 Service Temporarily Unavailable</h1></center></body></html>"
)

def state() -> SimulatorState:
    """The simulator's state."""
    sim: SimulatorState = current_app.extensions["registers_simulator"]
    return sim


def gate(source: str) -> Response | None:
    """Apply ``source``'s knobs to the current request; a response ends the request early."""
    sim = state()
    sim.count_call(source)
    knobs = sim.knobs(source)
    if knobs["latency_ms"]:
        time.sleep(knobs["latency_ms"] / 1000)
    if knobs["rate_limit"] is not None:
        wait = sim.admit(source, knobs["rate_limit"])
        if wait is not None:
            retry_after = knobs["retry_after_s"] if knobs["retry_after_s"] is not None else wait
            response = jsonify(error="Too Many Requests", status=429,
                               message="Rate limit exceeded, slow down.")
            response.status_code = 429
            response.headers["Retry-After"] = str(int(retry_after))
            return response
    if knobs["fail"] == 503:
        return Response(GATEWAY_PAGE, status=503, content_type="text/html")
    if knobs["fail"] == 500:
        response = jsonify(error="Internal Server Error", status=500, path=request.path)
        response.status_code = 500
        return response
    return None


def source_of(path: str) -> str | None:
    """The register a request path belongs to, by its prefix (unknown paths included)."""
    prefixes: dict[str, str] = current_app.extensions["registers_simulator_prefixes"]
    for prefix, source in prefixes.items():
        if path == prefix or path.startswith(prefix + "/"):
            return source
    return None


def before_register_request() -> Response | None:
    """App-wide hook: gate every request under a register's prefix, even an unknown path."""
    source = source_of(request.path)
    return gate(source) if source else None


def after_register_request(response: Response) -> Response:
    """App-wide hook: count every answer under a register's prefix by status."""
    source = source_of(request.path)
    if source:
        state().count_status(source, response.status_code)
    return response


def basic_auth() -> tuple[str, str] | None:
    """The request's HTTP Basic credentials, or None."""
    auth = request.authorization
    if auth is None or auth.type != "basic":
        return None
    return (auth.username or "", auth.password or "")
