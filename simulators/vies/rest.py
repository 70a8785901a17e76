"""The VIES REST API front end of the simulator (same register, same knobs as SOAP).

- ``POST /taxation_customs/vies/rest-api/check-vat-number`` with JSON ``countryCode``,
  ``vatNumber`` and optionally ``requesterMemberStateCode``/``requesterNumber``, ``traderName``,
  ``traderCompanyType``, ``traderStreet``, ``traderPostalCode``, ``traderCity``. Answers
  ``countryCode``, ``vatNumber``, ``requestDate`` (``2026-11-30T10:23:03.183Z``), ``valid``,
  ``requestIdentifier`` (a consultation number when both requester fields were sent, else
  ``""``), ``name``, ``address``, and with trader fields the ``trader*`` details and
  ``trader*Match`` codes ``VALID``/``INVALID``/``NOT_PROCESSED``.
- Faults are ``{"actionSucceed": false, "errorWrappers": [{"error": CODE, "message": ...}]}``
  sent with the ``fault_http_status`` knob's status (500, or 200 as VIES often does). The test
  numbers answer as on SOAP; ``700`` answers truncated JSON, ``702`` an HTML 503 page.
- ``GET /taxation_customs/vies/rest-api/check-status``: ``{"vow": {"available": true},
  "countries": [{"countryCode": "AT", "availability": "Available"}, ...]}``; the member states
  of the ``down`` knob are ``Unavailable``.

The ``front_ends_down`` knob (``["soap"]``, ``["rest"]``) takes one front end down: SOAP then
answers the fault ``SERVICE_UNAVAILABLE`` to every call while REST still answers (what
trace30's fallback is for), or REST answers HTTP 503 with ``SERVICE_UNAVAILABLE``.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, current_app, request

from . import register
from .state import SimulatorState

REST_PREFIX = "/taxation_customs/vies/rest-api"
JSON = "application/json"

#: Our register match codes → the REST API's.
_MATCH = {"1": "VALID", "2": "INVALID", "3": "NOT_PROCESSED"}
#: REST request field → the SOAP field :mod:`.register` reads.
_FIELDS = {
    "countryCode": "countryCode",
    "vatNumber": "vatNumber",
    "requesterMemberStateCode": "requesterCountryCode",
    "requesterNumber": "requesterVatNumber",
    "traderName": "traderName",
    "traderCompanyType": "traderCompanyType",
    "traderStreet": "traderStreet",
    "traderPostalCode": "traderPostcode",
    "traderCity": "traderCity",
}

rest_blueprint = Blueprint("vies_simulator_rest", __name__, url_prefix=REST_PREFIX)


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions["vies_simulator"]
    return state


def _json(body: Any, status: int = 200) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type=JSON)


def _fault(state: SimulatorState, code: str, status: int) -> Response:
    state.count_fault(code)
    return _json({"actionSucceed": False,
                  "errorWrappers": [{"error": code, "message": code.replace("_", " ").lower()}]},
                 status)


def _request_date() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _answer(fields: dict[str, str], trader: register.Trader) -> dict[str, Any]:
    from .routes import new_request_identifier

    body: dict[str, Any] = {
        "countryCode": fields["countryCode"],
        "vatNumber": fields["vatNumber"] if trader.valid else "",
        "requestDate": _request_date(),
        "valid": trader.valid,
        "requestIdentifier": new_request_identifier() if register.has_requester(fields) else "",
        "name": trader.name or "---",
        "address": trader.address or "---",
    }
    if any(fields.get(request_field) for request_field, _, _ in register.MATCHED_FIELDS):
        details = register.approx_details(trader)
        body.update({
            "traderName": details["traderName"] or "---",
            "traderStreet": details["traderStreet"] or "---",
            "traderPostalCode": details["traderPostcode"] or "---",
            "traderCity": details["traderCity"] or "---",
            "traderCompanyType": details["traderCompanyType"] or "---",
        })
        for match_field, code in register.match_codes(trader, fields).items():
            rest_field = match_field.replace("traderPostcodeMatch", "traderPostalCodeMatch")
            body[rest_field] = _MATCH[code]
    return body


@rest_blueprint.post("/check-vat-number")
def check_vat_number() -> Response:
    """Answer one ``check-vat-number`` request."""
    state = _state()
    config = state.get_config()
    status = config["fault_http_status"]
    document = request.get_json(silent=True)
    if not isinstance(document, dict) or not all(
            isinstance(v, str) for v in document.values()):
        document = None
    fields = {ours: document[theirs].strip() for theirs, ours in _FIELDS.items()
              if document and document.get(theirs)}
    country = fields.get("countryCode", "")
    valid_country = register.COUNTRY_CODE_RE.fullmatch(country) is not None
    # Counted when it arrives (as on SOAP), so a slow answer still counts for its own test.
    state.count_call("rest", country if valid_country else None)
    time.sleep(config["latency_ms"] / 1000)
    if "rest" in config["front_ends_down"]:
        return _fault(state, "SERVICE_UNAVAILABLE", 503)
    if document is None or not valid_country:
        return _fault(state, "INVALID_INPUT", 400)
    rejection = state.acquire(country)
    if rejection is not None:
        return _fault(state, rejection, status)
    try:
        decision = register.decide(fields, state.traders, config["overrides"], config["down"],
                                   config["slow_seconds"])
        if isinstance(decision, register.Fault):
            return _fault(state, decision.code, status)
        if isinstance(decision, register.Broken):
            if decision.kind == "truncated":
                state.count_anomaly("unparsable_json")
                return Response('{"countryCode": "' + country + '", "vatNum', status=200,
                                content_type=JSON)
            state.count_anomaly("http_503")
            return Response("<html><body><h1>503 Service Unavailable</h1></body></html>",
                            status=503, content_type="text/html")
        if decision.delay_seconds:
            time.sleep(decision.delay_seconds)
        return _json(_answer(fields, decision.trader))
    finally:
        state.release(country)


@rest_blueprint.get("/check-status")
def check_status() -> Response:
    """Each member state's availability; those of the ``down`` knob are ``Unavailable``."""
    state = _state()
    config = state.get_config()
    state.count_call("check-status", None)
    time.sleep(config["latency_ms"] / 1000)
    if "rest" in config["front_ends_down"]:
        return _fault(state, "SERVICE_UNAVAILABLE", 503)
    down = set(config["down"])
    return _json({
        "vow": {"available": True},
        "countries": [{"countryCode": cc, "availability": "Unavailable" if cc in down
                       else "Available"} for cc in sorted(register.MEMBER_STATES)],
    })
