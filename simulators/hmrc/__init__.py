"""Simulator of HMRC's "Check a UK VAT number" API, version 2, with its OAuth 2.0 token endpoint.

It speaks the real API's JSON at the real paths, so a client only changes the base URL
(``http://127.0.0.1:8204`` in sandbox):

- ``POST /oauth/token`` (``application/x-www-form-urlencoded``: ``grant_type=client_credentials``,
  ``client_id``, ``client_secret``, optional ``scope``): ``200 {"access_token", "scope":
  "read:vat", "expires_in", "token_type": "bearer"}``; wrong credentials ``401
  {"error": "invalid_client"}``, another grant type ``400 {"error": "unsupported_grant_type"}``.
- ``GET /organisations/vat/check-vat-number/lookup/{targetVrn}`` and
  ``.../lookup/{targetVrn}/{requesterVrn}`` with ``Accept: application/vnd.hmrc.2.0+json``
  (else ``406 ACCEPT_HEADER_INVALID``) and ``Authorization: Bearer <token>`` (missing, unknown or
  expired: ``401 INVALID_CREDENTIALS``). ``200`` with ``target`` (``name``, ``vatNumber``,
  ``address`` ``line1``… ``postcode`` ``countryCode``) and ``processingDate``; with a requester,
  also ``requester`` and a fresh ``consultationNumber``. A VRN that is not 9 or 12 digits:
  ``400 INVALID_REQUEST``; a requester not registered: ``403 INVALID_REQUEST``; an unknown
  target: ``404 NOT_FOUND``. Errors are ``{"code", "message"}``.

Demo registrations are in ``traders.json`` (checksum-valid VRNs, fictitious names).

Knobs (``create_app(config)``, ``GET``/``PATCH /_sim/config``, ``null`` restores a default):
``latency_ms`` (delay of every answer), ``fail`` (every lookup answers ``429``
``MESSAGE_THROTTLED_OUT``, ``500`` ``INTERNAL_SERVER_ERROR``, or ``503`` with an HTML gateway
page), ``malformed`` (lookups answer 200 with truncated JSON), ``rate_limit`` (lookups per
second; past it 429), ``token_ttl_s`` (``expires_in`` of new tokens, default 14400),
``token_fail`` (``500`` or ``503``: the token endpoint fails so). ``create_app`` also takes
``client_id``, ``client_secret`` and ``traders_path``.

Controls: ``GET /_sim/stats``, ``POST /_sim/reset``, ``GET``/``PATCH /_sim/config``,
``GET /_sim/health``.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import string
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from simulators.knobs import (
    ConfigError,
    KnobState,
    from_env,
    merge,
    number,
    one_of,
    positive_int,
    simulator_app,
)

__all__ = ["DEFAULT_CLIENT_ID", "DEFAULT_CLIENT_SECRET", "ConfigError", "config_from_env",
           "create_app"]

DEFAULT_TRADERS_PATH = Path(__file__).resolve().parent / "traders.json"
#: The sandbox credentials (``shared.config`` sandbox defaults of TRACE30_HMRC_CLIENT_*).
DEFAULT_CLIENT_ID = "trace30-sandbox-hmrc-client"
DEFAULT_CLIENT_SECRET = "trace30-sandbox-hmrc-secret"  # noqa: S105 (public sandbox value)
ACCEPT = "application/vnd.hmrc.2.0+json"
LOOKUP = "/organisations/vat/check-vat-number/lookup"
_VRN = re.compile(r"[0-9]{9}([0-9]{3})?")
_ALPHABET = string.ascii_letters + string.digits
GATEWAY_PAGE = ("<html><head><title>503 Service Unavailable</title></head><body><h1>503 "
                "Service Unavailable</h1></body></html>")

DEFAULTS: dict[str, Any] = {"latency_ms": 0, "fail": None, "malformed": False,
                            "rate_limit": None, "token_ttl_s": 14400, "token_fail": None}


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{key} must be true or false")
    return value


CHECKS = {"latency_ms": number, "fail": one_of(429, 500, 503), "malformed": _bool,
          "rate_limit": positive_int, "token_ttl_s": positive_int,
          "token_fail": one_of(500, 503)}

bp = Blueprint("hmrc_simulator", __name__)


class HmrcState(KnobState):
    """Knobs, counters, issued tokens and the demo register."""

    def __init__(self, config: dict[str, Any], traders: dict[str, dict[str, Any]],
                 client_id: str, client_secret: str) -> None:
        super().__init__(DEFAULTS, CHECKS, config)
        self.traders = traders
        self.client_id = client_id
        self.client_secret = client_secret
        self.tokens: dict[str, float] = {}
        self.token_lock = threading.Lock()


def _state() -> HmrcState:
    state: HmrcState = current_app.extensions["hmrc_simulator"]
    return state


def _error(status: int, code: str, message: str) -> Response:
    response = jsonify(code=code, message=message)
    response.status_code = status
    return response


@bp.post("/oauth/token")
def token() -> Response:
    """OAuth 2.0 client credentials grant."""
    state = _state()
    state.count_call("token")
    knobs = state.get_config()
    time.sleep(knobs["latency_ms"] / 1000)
    if knobs["token_fail"] == 503:
        return Response(GATEWAY_PAGE, status=503, content_type="text/html")
    if knobs["token_fail"] == 500:
        return _error(500, "INTERNAL_SERVER_ERROR", "Unknown error")
    form = request.form
    if form.get("grant_type") != "client_credentials":
        response = jsonify(error="unsupported_grant_type",
                           error_description="grant_type must be client_credentials")
        response.status_code = 400
        return response
    if not (secrets.compare_digest(form.get("client_id", ""), state.client_id)
            and secrets.compare_digest(form.get("client_secret", ""), state.client_secret)):
        response = jsonify(error="invalid_client", error_description="invalid client id or secret")
        response.status_code = 401
        return response
    issued = secrets.token_hex(16)
    ttl = knobs["token_ttl_s"]
    with state.token_lock:
        now = time.monotonic()
        state.tokens = {t: exp for t, exp in state.tokens.items() if exp > now}
        state.tokens[issued] = now + ttl
    return jsonify(access_token=issued, scope="read:vat", expires_in=ttl,
                   token_type="bearer")  # noqa: S106 (an OAuth field, not a password)


def _authorised(state: HmrcState) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return False
    with state.token_lock:
        expires = state.tokens.get(value.strip())
    return expires is not None and expires > time.monotonic()


@bp.get(f"{LOOKUP}/<target>")
@bp.get(f"{LOOKUP}/<target>/<requester>")
def lookup(target: str, requester: str | None = None) -> Response:
    """Look a VRN up, with the requester's VRN for a consultation number."""
    state = _state()
    state.count_call("lookup")
    knobs = state.get_config()
    time.sleep(knobs["latency_ms"] / 1000)
    if request.headers.get("Accept", "") != ACCEPT:
        return _error(406, "ACCEPT_HEADER_INVALID", "The accept header is missing or invalid")
    if not _authorised(state):
        return _error(401, "INVALID_CREDENTIALS", "Invalid Authentication information provided")
    if knobs["rate_limit"] is not None and state.admit("lookup", knobs["rate_limit"], 1.0):
        return _throttled()
    if knobs["fail"] == 429:
        return _throttled()
    if knobs["fail"] == 500:
        return _error(500, "INTERNAL_SERVER_ERROR", "Unknown error")
    if knobs["fail"] == 503:
        return Response(GATEWAY_PAGE, status=503, content_type="text/html")
    if not _VRN.fullmatch(target):
        return _error(400, "INVALID_REQUEST",
                      "Invalid targetVrn - Vrn parameters should be 9 or 12 digits")
    if requester is not None and not _VRN.fullmatch(requester):
        return _error(400, "INVALID_REQUEST",
                      "Invalid requesterVrn - Vrn parameters should be 9 or 12 digits")
    if requester is not None and requester not in state.traders:
        return _error(403, "INVALID_REQUEST", "requesterVrn does not match a registered company")
    trader = state.traders.get(target)
    if trader is None:
        return _error(404, "NOT_FOUND", "targetVrn does not match a registered company")
    body: dict[str, Any] = {
        "target": {"name": trader["name"], "vatNumber": target, "address": trader["address"]},
        "processingDate": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    if requester is not None:
        body["requester"] = requester
        body["consultationNumber"] = "".join(secrets.choice(_ALPHABET) for _ in range(9))
    text = json.dumps(body)
    if knobs["malformed"]:
        text = text[: len(text) // 2]
    return Response(text, status=200, content_type="application/json")


def _throttled() -> Response:
    return _error(429, "MESSAGE_THROTTLED_OUT",
                  "The request for the API is throttled as you have exceeded your quota.")


def load_traders(path: Path) -> dict[str, dict[str, Any]]:
    """The demo register ``{"traders": [{"vrn", "name", "address": {...}}]}`` by VRN."""
    rows = json.loads(path.read_text(encoding="utf-8"))["traders"]
    return {row["vrn"]: {"name": row["name"], "address": row["address"]} for row in rows}


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Knobs from ``TRACE30_SIM_HMRC_LATENCY_MS`` and ``TRACE30_SIM_HMRC_FAIL``.

    >>> config_from_env({"TRACE30_SIM_HMRC_FAIL": "429"})
    {'fail': 429}
    """
    return from_env(environ, "TRACE30_SIM_HMRC_", {"latency_ms": float, "fail": int})


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the simulator; ``None`` reads the knobs from the environment. Raises
    :class:`ConfigError` on an unknown knob or a bad value."""
    settings = dict(config_from_env(os.environ) if config is None else config)
    traders_path = Path(settings.pop("traders_path", DEFAULT_TRADERS_PATH))
    client_id = str(settings.pop("client_id", DEFAULT_CLIENT_ID))
    client_secret = str(settings.pop("client_secret", DEFAULT_CLIENT_SECRET))
    state = HmrcState(merge(DEFAULTS, CHECKS, settings), load_traders(traders_path), client_id,
                      client_secret)
    return simulator_app(__name__, "hmrc_simulator", bp, state, 16 * 1024)
