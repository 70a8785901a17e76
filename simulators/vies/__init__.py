"""Simulator of the EU Commission's VIES VAT number validation service (SOAP 1.1).

It speaks the real wire format at the real paths, so a client only changes the host:

- ``POST /taxation_customs/vies/services/checkVatService``: ``checkVat`` and
  ``checkVatApprox`` (document/literal SOAP 1.1, ``text/xml``). Answers use the current VIES
  format (``env:`` envelope with ``<env:Header/>``, ``ns2:`` payload, ``requestDate`` like
  ``2026-11-28+01:00``). Faults are ``<env:Fault>`` with ``faultcode`` ``env:Server`` and the
  VIES code as ``faultstring``, sent with HTTP 500 (knob ``fault_http_status``: 500 or 200,
  as real VIES sends both). A malformed request, a DOCTYPE or an entity declaration gets the
  fault ``INVALID_INPUT``. Bodies over 64 KiB get HTTP 413.
- ``POST /taxation_customs/vies/rest-api/check-vat-number`` and ``GET .../rest-api/check-status``:
  the REST API front end over the same register and knobs (:mod:`.rest`).
- ``GET /taxation_customs/vies/checkVatService.wsdl`` and ``GET .../services/checkVatService?wsdl``:
  trace30's WSDL (``services/vat/wsdl/checkVatService.wsdl``) with ``soap:address`` pointing
  at this simulator.

Numbers (the ``vatNumber`` part alone, with any country code), as on the VIES test service:
``100`` valid ("John Doe", "123 Main St, Anytown, UK"; via checkVatApprox every match code
is 1); ``200`` invalid (name and address ``---``); faults ``201`` INVALID_INPUT, ``202``
INVALID_REQUESTER_INFO, ``300`` SERVICE_UNAVAILABLE, ``301`` MS_UNAVAILABLE, ``302`` TIMEOUT,
``400`` VAT_BLOCKED, ``401`` IP_BLOCKED, ``500`` GLOBAL_MAX_CONCURRENT_REQ, ``501``
GLOBAL_MAX_CONCURRENT_REQ_TIME, ``600`` MS_MAX_CONCURRENT_REQ, ``601``
MS_MAX_CONCURRENT_REQ_TIME.

Simulator-only extensions, for testing a client's robustness:
``700`` HTTP 200 with unparsable XML (a truncated envelope); ``701`` sleeps ``slow_seconds``
then answers as ``100`` (a hang); ``702`` HTTP 503 with an HTML page (a gateway error);
``703`` the fault MS_UNAVAILABLE without ``<faultcode>`` (as in a captured legacy fault);
``704`` the legacy fault SERVER_BUSY.

Other numbers come from the demo register ``traders.json`` (checksum-valid numbers; German
traders answer name and address ``---`` and match code 3, as Germany discloses nothing).
Unknown numbers are reported invalid, as VIES reports a number not in the member state's
register; invalid answers carry an empty ``vatNumber``, as VIES sends them. A country that is
not a VIES member state (``GB`` since 2021) gets INVALID_INPUT. See :mod:`.register` for the
full order of the rules and the match codes.

checkVatApprox echoes the registered trader details and, for each of traderName,
traderCompanyType, traderStreet, traderPostcode, traderCity that the request sent, a match
code: 1 (equal ignoring case and spaces), 2 (different), 3 (not processed). Fields not sent get
no match element. ``requestIdentifier`` is a fresh ``WAPIAAAA`` + 8 alphanumerics when both
``requesterCountryCode`` and ``requesterVatNumber`` were sent, else empty.

Knobs (``create_app(config)``, ``GET``/``PATCH /_sim/config`` with JSON merge semantics):
``latency_ms`` (delay of every answer, default 0), ``ms_limits`` ({country: max concurrent
requests}; beyond it MS_MAX_CONCURRENT_REQ at once), ``global_limit`` (same for all states,
GLOBAL_MAX_CONCURRENT_REQ), ``fault_http_status`` (500 or 200), ``slow_seconds`` (for 701,
default 30), ``overrides`` ({"CCNUMBER": trader record or {"fault": "CODE"}}), ``down``
(countries answering MS_UNAVAILABLE), ``front_ends_down`` (``["soap"]``: every SOAP call
answers SERVICE_UNAVAILABLE while REST still answers; ``["rest"]`` the other way round).
``create_app`` also takes ``traders_path`` and
``wsdl_path``. With ``config=None`` the knobs come from the environment
(:func:`config_from_env`).

Controls: ``GET /_sim/stats``, ``POST /_sim/reset``, ``GET``/``PATCH /_sim/config``,
``GET /_sim/health``.

Concurrency is counted per process: run one process with threads. ``python -m simulators.vies``
does so; under gunicorn use ``simulators.vies.wsgi:app`` with ``--workers 1 --threads N`` so
that the counts are whole.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from simulators.control import control_blueprint

from .register import load_traders
from .rest import REST_PREFIX, rest_blueprint
from .routes import SOAP_PATH, WSDL_PATH, blueprint
from .state import ConfigError, SimulatorState, merge_config

__all__ = [
    "REST_PREFIX",
    "SOAP_PATH",
    "WSDL_PATH",
    "ConfigError",
    "config_from_env",
    "create_app",
    "parse_ms_limits",
]

DEFAULT_TRADERS_PATH = Path(__file__).resolve().parent / "traders.json"
DEFAULT_WSDL_PATH = (
    Path(__file__).resolve().parents[2] / "services" / "vat" / "wsdl" / "checkVatService.wsdl"
)
MAX_REQUEST_BYTES = 64 * 1024


def parse_ms_limits(text: str) -> dict[str, int]:
    """Parse per-state limits written ``"DE=2,FR=5"``; raises :class:`ValueError`."""
    limits: dict[str, int] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        country, sep, limit = item.partition("=")
        if not sep:
            raise ValueError(f"expected COUNTRY=LIMIT, got {item!r}")
        limits[country.strip().upper()] = int(limit)
    return limits


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read knobs from the environment.

    ``TRACE30_SIM_VIES_LATENCY_MS`` (number), ``TRACE30_SIM_VIES_MS_LIMITS`` (``"DE=2,FR=5"``),
    ``TRACE30_SIM_VIES_GLOBAL_LIMIT`` (integer), ``TRACE30_SIM_VIES_FAULT_HTTP_STATUS`` (500 or
    200). Unset or empty variables are ignored.
    """
    config: dict[str, Any] = {}
    if environ.get("TRACE30_SIM_VIES_LATENCY_MS"):
        config["latency_ms"] = float(environ["TRACE30_SIM_VIES_LATENCY_MS"])
    if environ.get("TRACE30_SIM_VIES_MS_LIMITS"):
        config["ms_limits"] = parse_ms_limits(environ["TRACE30_SIM_VIES_MS_LIMITS"])
    if environ.get("TRACE30_SIM_VIES_GLOBAL_LIMIT"):
        config["global_limit"] = int(environ["TRACE30_SIM_VIES_GLOBAL_LIMIT"])
    if environ.get("TRACE30_SIM_VIES_FAULT_HTTP_STATUS"):
        config["fault_http_status"] = int(environ["TRACE30_SIM_VIES_FAULT_HTTP_STATUS"])
    return config


def create_app(config: dict[str, Any] | None = None) -> Flask:
    """Build a simulator app.

    ``config`` holds knobs (see the module docstring) and optionally ``traders_path`` and
    ``wsdl_path``; ``None`` reads the knobs from the environment. Raises
    :class:`ConfigError` on an unknown knob or bad value.
    """
    settings = dict(config_from_env(os.environ) if config is None else config)
    traders_path = Path(settings.pop("traders_path", DEFAULT_TRADERS_PATH))
    wsdl_path = Path(settings.pop("wsdl_path", DEFAULT_WSDL_PATH))
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    app.extensions["vies_simulator"] = SimulatorState(
        config=merge_config(settings),
        traders=load_traders(traders_path),
        wsdl_path=wsdl_path,
    )
    app.register_blueprint(blueprint)
    app.register_blueprint(rest_blueprint)
    app.register_blueprint(control_blueprint("vies_simulator_control", "vies_simulator"))
    return app
