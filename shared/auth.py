"""Bearer-token auth for the internal ``/v1`` routes of every service.

Services only talk to each other (the gateway is the public face), so one shared secret,
``TRACE30_INTERNAL_TOKEN``, guards them; health and OpenAPI routes stay open for probes.
"""

from __future__ import annotations

import hmac

from flask import Flask, current_app, request

from shared.errors import Unauthorized

PROTECTED_PREFIX = "/v1/"


def bearer_token() -> str | None:
    """The token of the request's ``Authorization: Bearer`` header, if any."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _require_internal_token() -> None:
    if not request.path.startswith(PROTECTED_PREFIX):
        return
    expected: str = current_app.config["INTERNAL_TOKEN"]
    token = bearer_token()
    if token is None:
        raise Unauthorized("This route needs an 'Authorization: Bearer <token>' header.")
    if not hmac.compare_digest(token.encode(), expected.encode()):
        raise Unauthorized("The bearer token is not valid.")



def init_app(app: Flask) -> None:
    """Require the internal bearer token on every ``/v1`` route of ``app``."""
    app.before_request(_require_internal_token)
