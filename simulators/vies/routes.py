"""HTTP endpoints of the VIES simulator: the SOAP service, its WSDL and the ``/_sim/`` controls."""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

from flask import Blueprint, Response, current_app, request

from . import register, soap
from .state import SimulatorState

SOAP_PATH = "/taxation_customs/vies/services/checkVatService"
WSDL_PATH = "/taxation_customs/vies/checkVatService.wsdl"
XML_CONTENT_TYPE = "text/xml;charset=UTF-8"

_IDENTIFIER_ALPHABET = string.ascii_letters + string.digits

blueprint = Blueprint("vies_simulator", __name__)


def _state() -> SimulatorState:
    state: SimulatorState = current_app.extensions["vies_simulator"]
    return state


def _xml(body: bytes, status: int = 200) -> Response:
    return Response(body, status=status, content_type=XML_CONTENT_TYPE)


def _fault(state: SimulatorState, config: dict[str, Any], fault: register.Fault) -> Response:
    state.count_fault(fault.code)
    body = soap.render_fault(fault.code, with_faultcode=fault.with_faultcode)
    return _xml(body, status=config["fault_http_status"])


def new_request_identifier() -> str:
    """Return a fresh consultation number: ``WAPIAAAA`` and 8 random letters or digits."""
    return "WAPIAAAA" + "".join(secrets.choice(_IDENTIFIER_ALPHABET) for _ in range(8))


def _answer(parsed: soap.SoapRequest, answer: register.Answer) -> Response:
    fields = parsed.fields
    trader = answer.trader
    country = fields["countryCode"]
    number = fields["vatNumber"] if trader.valid else ""
    date = soap.request_date()
    if parsed.operation == soap.CHECK_VAT:
        body = soap.render_check_vat(
            country, number, trader.valid, trader.name, trader.address, date
        )
    else:
        identifier = new_request_identifier() if register.has_requester(fields) else ""
        body = soap.render_check_vat_approx(
            country,
            number,
            trader.valid,
            date,
            register.approx_details(trader),
            register.match_codes(trader, fields),
            identifier,
        )
    return _xml(body)


@blueprint.post(SOAP_PATH)
def check_vat_service() -> Response:
    """Answer a SOAP 1.1 ``checkVat`` or ``checkVatApprox`` request."""
    state = _state()
    config = state.get_config()
    latency = config["latency_ms"] / 1000
    if "soap" in config["front_ends_down"]:  # the SOAP front end is down, REST may answer
        state.count_call(None, None)
        time.sleep(latency)
        return _fault(state, config, register.Fault("SERVICE_UNAVAILABLE"))
    try:
        parsed = soap.parse_request(request.get_data(cache=False))
    except soap.MalformedRequest:
        state.count_call(None, None)
        time.sleep(latency)
        return _fault(state, config, register.Fault("INVALID_INPUT"))

    country = parsed.fields.get("countryCode", "")
    if register.COUNTRY_CODE_RE.fullmatch(country) is None:
        state.count_call(parsed.operation, None)
        time.sleep(latency)
        return _fault(state, config, register.Fault("INVALID_INPUT"))
    state.count_call(parsed.operation, country)
    rejection = state.acquire(country)
    if rejection is not None:
        return _fault(state, config, register.Fault(rejection))
    try:
        time.sleep(latency)
        decision = register.decide(
            parsed.fields,
            state.traders,
            config["overrides"],
            config["down"],
            config["slow_seconds"],
        )
        if isinstance(decision, register.Fault):
            return _fault(state, config, decision)
        if isinstance(decision, register.Broken):
            if decision.kind == "truncated":
                state.count_anomaly("unparsable_xml")
                date = soap.request_date()
                return _xml(soap.render_truncated(country, parsed.fields["vatNumber"], date))
            state.count_anomaly("http_503")
            return Response(soap.GATEWAY_ERROR_PAGE, status=503, content_type="text/html")
        if decision.delay_seconds:
            time.sleep(decision.delay_seconds)
        return _answer(parsed, decision)
    finally:
        state.release(country)


def _wsdl() -> Response:
    state = _state()
    location = request.host_url.rstrip("/") + SOAP_PATH
    wsdl = soap.wsdl_with_address(state.wsdl_path.read_bytes(), location)
    return _xml(wsdl)


@blueprint.get(WSDL_PATH)
def wsdl_document() -> Response:
    """Serve the WSDL with ``soap:address`` pointing at this simulator."""
    return _wsdl()


@blueprint.get(SOAP_PATH)
def wsdl_query() -> Response:
    """Serve the WSDL for ``GET ...?wsdl``; any other GET is refused (405)."""
    if any(key.lower() == "wsdl" for key in request.args):
        return _wsdl()
    return Response(
        "POST a SOAP 1.1 request, or GET ?wsdl\n",
        status=405,
        headers={"Allow": "GET, POST"},
        content_type="text/plain",
    )
