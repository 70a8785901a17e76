"""Simulator of a Verification of Payee (VoP) provider, in the shape of the EPC VoP API.

It speaks JSON at the path a requesting PSP or routing service calls, so a client only changes
the base URL (``http://127.0.0.1:8203/vop/v1`` in sandbox):

- ``POST /vop/v1/payee-verifications`` with the headers ``X-Request-ID`` (required; echoed)
  and ``X-Request-Timestamp``, and the body
  ``{"party": {"name": ...}, "partyAccount": {"iban": ...}, "partyAgent": {...}}``
  (``partyAgent`` optional). Answers ``200 {"partyNameMatch": "MTCH" | "CMTC" | "NMTC" |
  "NOAP"}``, with ``"matchedName"`` (the holder's name) for ``CMTC`` only, and the header
  ``X-Response-Timestamp``. A malformed request gets ``400 {"code": "FORMAT_ERROR",
  "message": ...}`` naming the field, never its value. Bodies over 16 KiB get 413.

Answers come from the demo accounts in ``accounts.json``; :mod:`.accounts` has the rule
(unknown account and non-participating bank ``NOAP``; same normalised name ``MTCH``; similar
``CMTC``; else ``NMTC``).

Knobs (``create_app(config)``, ``GET``/``PATCH /_sim/config`` with JSON merge semantics, ``null``
restores the default): ``latency_ms`` (delay of every answer, default 0), ``fail`` (``null``,
``"http_500"``, ``"http_503"`` or ``"bad_response"``, an HTML page with HTTP 200: every
request fails so), ``slow_seconds`` (delay of the accounts whose behaviour is ``slow``, default
30). ``create_app`` also takes ``accounts_path``. With ``config=None`` the knobs come from the
environment (:func:`config_from_env`).

Controls: ``GET /_sim/stats``, ``POST /_sim/reset``, ``GET``/``PATCH /_sim/config``,
``GET /_sim/health``.

The simulator never logs a request body: IBANs and names stay out of its output.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from simulators.control import control_blueprint

from .accounts import load_accounts
from .routes import VOP_PATH, blueprint
from .state import ConfigError, SimulatorState, merge_config

__all__ = ["VOP_PATH", "ConfigError", "config_from_env", "create_app"]

DEFAULT_ACCOUNTS_PATH = Path(__file__).resolve().parent / "accounts.json"
MAX_REQUEST_BYTES = 16 * 1024


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read knobs from the environment.

    ``TRACE30_SIM_PAYEE_LATENCY_MS`` (number), ``TRACE30_SIM_PAYEE_FAIL`` (a fail mode),
    ``TRACE30_SIM_PAYEE_SLOW_SECONDS`` (number). Unset or empty variables are ignored.

    >>> config_from_env({"TRACE30_SIM_PAYEE_LATENCY_MS": "25", "TRACE30_SIM_PAYEE_FAIL": ""})
    {'latency_ms': 25.0}
    """
    config: dict[str, Any] = {}
    if environ.get("TRACE30_SIM_PAYEE_LATENCY_MS"):
        config["latency_ms"] = float(environ["TRACE30_SIM_PAYEE_LATENCY_MS"])
    if environ.get("TRACE30_SIM_PAYEE_FAIL"):
        config["fail"] = environ["TRACE30_SIM_PAYEE_FAIL"]
    if environ.get("TRACE30_SIM_PAYEE_SLOW_SECONDS"):
        config["slow_seconds"] = float(environ["TRACE30_SIM_PAYEE_SLOW_SECONDS"])
    return config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build a simulator app.

    ``config`` holds knobs (see the module docstring) and optionally ``accounts_path``;
    ``None`` reads the knobs from the environment. Raises :class:`ConfigError` on an unknown
    knob or a bad value.
    """
    settings = dict(config_from_env(os.environ) if config is None else config)
    accounts_path = Path(settings.pop("accounts_path", DEFAULT_ACCOUNTS_PATH))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["payee_simulator"] = SimulatorState(
        config=merge_config(settings), accounts=load_accounts(accounts_path)
    )
    app.register_blueprint(blueprint)
    app.register_blueprint(control_blueprint("payee_simulator_control", "payee_simulator"))
    return app
