"""Simulator of the seven official registers the registry service queries (one app, port 8202).

Each register is served under a prefix, at the path of the real API, speaking its wire format,
so a client changes only the base URL:

- ``GET /gleif/api/v1/lei-records/{lei}``: GLEIF (:mod:`.gleif`);
- ``GET /recherche-entreprises/search?q=``: France's API Recherche d'entreprises
  (:mod:`.recherche`);
- ``GET /brreg/enhetsregisteret/api/enheter/{orgnr}``: Norway's Enhetsregisteret
  (:mod:`.brreg`), with 410 for an entity removed for legal reasons;
- ``GET /companies-house/company/{number}``: UK Companies House (:mod:`.companies_house`),
  HTTP Basic auth with the API key as user name;
- ``POST /cvr/cvr-permanent/virksomhed/_search``: Denmark's CVR Elasticsearch
  (:mod:`.cvr`), HTTP Basic auth;
- ``GET /ares/ekonomicke-subjekty-v-be/rest/ekonomicke-subjekty/{ico}``: the Czech ARES
  (:mod:`.ares`);
- ``GET /krs/api/krs/OdpisAktualny/{krs}?rejestr=P|S&format=json`` and ``.../OdpisPelny/...``:
  Poland's API KRS (:mod:`.krs`), with 204 for a deleted entity's current extract.

Demo companies are in ``data/*.json`` (one file per register), covering active, dissolved or
ceased, in liquidation, bankrupt, deleted (brreg 200 with ``slettedato`` and 410, KRS 204),
lapsed, retired and merged LEIs, a closed establishment of an active French company, a Czech
company in the insolvency register, a Polish foundation in register S; any other number is
unknown (404, or no results where the real API answers so).

Credentials (``create_app`` keys, or ``TRACE30_SIM_REGISTERS_*`` variables): Companies House
key ``trace30-sandbox-companies-house-key``; CVR user ``trace30-sandbox``, password
``trace30-sandbox-cvr`` (the sandbox defaults of ``shared.config``).

Knobs (``create_app(config)``, ``GET``/``PATCH /_sim/config`` with JSON merge semantics):
``latency_ms`` (delay of every answer, default 0), ``fail`` (``500`` or ``503``: every request
answers that, a JSON error or an HTML gateway page), ``rate_limit`` (requests per second per
register; past it 429 with ``Retry-After``; ``0`` throttles everything), ``retry_after_s``
(the ``Retry-After`` sent; default: the seconds until the window frees), and ``sources``
({register: {knob: value}}: per-register overrides, registers ``gleif``,
``recherche_entreprises``, ``brreg``, ``companies_house``, ``cvr``, ``ares``, ``krs``). ``null``
resets a knob.

Controls: ``GET /_sim/stats`` (calls by register and by HTTP status), ``POST /_sim/reset``,
``GET``/``PATCH /_sim/config``, ``GET /_sim/health``.

Rate windows are counted per process: run one process with threads (``python -m
simulators.registers`` does).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flask import Flask

from simulators.control import control_blueprint

from . import ares, brreg, companies_house, cvr, gleif, krs, recherche
from .routes import after_register_request, before_register_request
from .state import ConfigError, SimulatorState, merge_config

__all__ = ["DEFAULT_CREDENTIALS", "ConfigError", "config_from_env", "create_app"]

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_CREDENTIALS = {
    "companies_house_api_key": "trace30-sandbox-companies-house-key",
    "cvr_username": "trace30-sandbox",
    "cvr_password": "trace30-sandbox-cvr",
}
#: Each register's data file and the field that keys its records.
_DATA = {
    "gleif": ("gleif.json", "lei"),
    "recherche_entreprises": ("recherche_entreprises.json", "siren"),
    "brreg": ("brreg.json", "orgnr"),
    "companies_house": ("companies_house.json", "company_number"),
    "cvr": ("cvr.json", "cvr"),
    "ares": ("ares.json", "ico"),
    "krs": ("krs.json", "krs"),
}
_ENV = "TRACE30_SIM_REGISTERS_"


def load_records(data_dir: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Every register's demo records, keyed by their number."""
    records: dict[str, dict[str, dict[str, Any]]] = {}
    for source, (filename, key) in _DATA.items():
        rows = json.loads((data_dir / filename).read_text(encoding="utf-8"))
        records[source] = {str(row[key]): row for row in rows}
    return records


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Read knobs and credentials from the environment.

    ``TRACE30_SIM_REGISTERS_LATENCY_MS``, ``..._FAIL`` (500 or 503), ``..._RATE_LIMIT``,
    ``..._COMPANIES_HOUSE_API_KEY``, ``..._CVR_USERNAME``, ``..._CVR_PASSWORD``. Unset or empty
    variables are ignored.

    >>> config_from_env({"TRACE30_SIM_REGISTERS_RATE_LIMIT": "5"})
    {'rate_limit': 5}
    """
    config: dict[str, Any] = {}
    if environ.get(_ENV + "LATENCY_MS"):
        config["latency_ms"] = float(environ[_ENV + "LATENCY_MS"])
    if environ.get(_ENV + "FAIL"):
        config["fail"] = int(environ[_ENV + "FAIL"])
    if environ.get(_ENV + "RATE_LIMIT"):
        config["rate_limit"] = int(environ[_ENV + "RATE_LIMIT"])
    for name in DEFAULT_CREDENTIALS:
        if environ.get(_ENV + name.upper()):
            config[name] = environ[_ENV + name.upper()]
    return config


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build a simulator app.

    ``config`` holds knobs (see the module docstring), credentials and optionally
    ``data_dir``; ``None`` reads them from the environment. Raises :class:`ConfigError` on an
    unknown knob or a bad value.
    """
    settings = dict(config_from_env(os.environ) if config is None else config)
    data_dir = Path(settings.pop("data_dir", DATA_DIR))
    credentials = {name: str(settings.pop(name, default))
                   for name, default in DEFAULT_CREDENTIALS.items()}
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    app.extensions["registers_simulator"] = SimulatorState(
        config=merge_config(settings), records=load_records(data_dir), credentials=credentials,
    )
    app.extensions["registers_simulator_prefixes"] = {}
    app.register_blueprint(control_blueprint("registers_simulator_control", "registers_simulator"))
    for module in (gleif, recherche, brreg, companies_house, cvr, ares, krs):
        app.register_blueprint(module.bp)
        app.extensions["registers_simulator_prefixes"][module.PREFIX] = module.SOURCE
    app.before_request(before_register_request)
    app.after_request(after_register_request)
    return app
