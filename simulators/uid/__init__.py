"""Simulator of the Swiss UID register's public services (SOAP 1.1, interface V5.0).

It speaks the real wire format at the real path, so a client only changes the host
(``http://127.0.0.1:8205/V5.0/PublicServices.svc`` in sandbox):

- ``POST /V5.0/PublicServices.svc`` (``text/xml``, ``SOAPAction``
  ``http://www.uid.admin.ch/xmlns/uid-wse/IPublicServices/<Operation>``), document/literal in
  the namespace ``http://www.uid.admin.ch/xmlns/uid-wse``:
  ``ValidateVatNumber(vatNumber)`` → ``ValidateVatNumberResult`` ``true`` (active in the VAT
  register) or ``false``; ``ValidateUID(uid)`` likewise for the UID; ``GetByUID(uid:
  {uidOrganisationIdCategorie, uidOrganisationId})`` → ``GetByUIDResult`` with one
  ``organisationType`` (eCH-0108 organisation: name, address, UID and VAT register
  information) or none. A number that is not ``CHE`` + 9 digits (``-``/``.`` and a trailing
  ``MWST``/``TVA``/``IVA``/``TPV`` allowed) gets the fault ``Data_validation_failed``.
  Faults are ``<s:Fault>`` with ``faultcode`` ``s:Client`` (``s:Server`` for ours), the code as
  ``faultstring`` and a ``detail/businessFault`` (``operation``, ``error``, ``errorDetail``),
  sent with HTTP 500. A malformed request, a DOCTYPE or an entity declaration is
  ``Data_validation_failed`` too.
- ``GET /V5.0/PublicServices.svc?wsdl``: trace30's WSDL (``services/vat/wsdl/``) with
  ``soap:address`` pointing at this simulator.

Anonymous use is limited as on the real service: past ``rate_limit_per_min`` requests (default
20) in a minute, the fault ``Request_limit_exceeded`` ("Maximum number of 20 requests per 1
minute(s) exceeded").

Demo organisations are in ``organisations.json`` (checksum-valid UIDs, fictitious names; one
deregistered from VAT). Unknown numbers are not valid and GetByUID answers no organisation.

Knobs (``create_app(config)``, ``GET``/``PATCH /_sim/config``, ``null`` restores a default):
``latency_ms``, ``fail`` (every request: ``"limit"`` the Request_limit_exceeded fault,
``"http_500"`` a server fault ``Internal_error``, ``"http_503"`` an HTML gateway page,
``"malformed"`` HTTP 200 with truncated XML), ``rate_limit_per_min`` (``0``: no limit).

Controls: ``GET /_sim/stats``, ``POST /_sim/reset`` (also empties the rate window),
``GET``/``PATCH /_sim/config``, ``GET /_sim/health``.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from flask import Blueprint, Flask, Response, current_app, request

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
from simulators.vies.soap import MalformedRequest, parse_xml

__all__ = ["SOAP_PATH", "ConfigError", "config_from_env", "create_app"]

SOAP_PATH = "/V5.0/PublicServices.svc"
DEFAULT_DATA_PATH = Path(__file__).resolve().parent / "organisations.json"
DEFAULT_WSDL_PATH = (
    Path(__file__).resolve().parents[2] / "services" / "vat" / "wsdl" / "uid-wse-public.wsdl"
)
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
UID_NS = "http://www.uid.admin.ch/xmlns/uid-wse"
UID5_NS = "http://www.uid.admin.ch/xmlns/uid-wse/5"
SHARED_NS = "http://www.uid.admin.ch/xmlns/uid-wse-shared/2"
ECH97 = "http://www.ech.ch/xmlns/eCH-0097/5"
ECH98 = "http://www.ech.ch/xmlns/eCH-0098/5"
ECH108 = "http://www.ech.ch/xmlns/eCH-0108/5"
XML = "text/xml; charset=utf-8"
OPERATIONS = ("ValidateVatNumber", "ValidateUID", "GetByUID")
_NUMBER = re.compile(r"CHE-?([0-9]{3})\.?([0-9]{3})\.?([0-9]{3})(?:\s*(?:MWST|TVA|IVA|TPV))?")
GATEWAY_PAGE = ("<html><head><title>503 Service Unavailable</title></head><body><h1>Service "
                "Unavailable</h1></body></html>")

DEFAULTS: dict[str, Any] = {"latency_ms": 0, "fail": None, "rate_limit_per_min": 20}
CHECKS = {"latency_ms": number, "fail": one_of("limit", "http_500", "http_503", "malformed"),
          "rate_limit_per_min": positive_int}

bp = Blueprint("uid_simulator", __name__)


class UidState(KnobState):
    """Knobs, counters, the rate window, the demo register and the WSDL."""

    def __init__(self, config: dict[str, Any], organisations: dict[str, dict[str, Any]],
                 wsdl_path: Path) -> None:
        super().__init__(DEFAULTS, CHECKS, config)
        self.organisations = organisations
        self.wsdl_path = wsdl_path


def _state() -> UidState:
    state: UidState = current_app.extensions["uid_simulator"]
    return state


def _envelope(body: str) -> str:
    return (f'<s:Envelope xmlns:s="{SOAP_NS}"><s:Body>{body}</s:Body></s:Envelope>')


def _fault(error: str, detail: str, operation: str, *, server: bool = False) -> Response:
    code = "s:Server" if server else "s:Client"
    body = (
        f'<s:Fault><faultcode>{code}</faultcode><faultstring xml:lang="de-CH">{error}'
        f'</faultstring><detail><businessFault xmlns="{UID_NS}">'
        f'<operation xmlns="{SHARED_NS}">{escape(operation)}</operation>'
        f'<error xmlns="{SHARED_NS}">{error}</error>'
        f'<errorDetail xmlns="{SHARED_NS}">{escape(detail)}</errorDetail>'
        "</businessFault></detail></s:Fault>"
    )
    return Response(_envelope(body), status=500, content_type=XML)


def _result(operation: str, inner: str) -> Response:
    return Response(_envelope(f'<{operation}Response xmlns="{UID_NS}">{inner}'
                              f"</{operation}Response>"), status=200, content_type=XML)


def uid_digits(text: str) -> str | None:
    """The 9 digits of a UID or VAT number as the service accepts it, or None."""
    m = _NUMBER.fullmatch(text.strip().upper())
    return "".join(m.groups()) if m else None


def organisation_xml(digits: str, org: Mapping[str, Any]) -> str:
    """One ``organisationType`` as GetByUID answers it."""
    a = org.get("address", {})
    address = "".join(
        f"<{k}>{escape(str(a[k]))}</{k}>"
        for k in ("addressLine1", "street", "houseNumber", "town", "swissZipCode",
                  "municipalityId", "cantonAbbreviation", "countryIdISO2") if a.get(k)
    )
    vat = org.get("vat", {})
    vat_xml = ""
    if vat:
        vat_xml = (
            f"<vatRegisterInformation><vatStatus>{vat['status']}</vatStatus>"
            f"<vatEntryStatus>1</vatEntryStatus><vatEntryDate>{vat['entry_date']}</vatEntryDate>"
            + (f"<vatLiquidationDate>{vat['liquidation_date']}</vatLiquidationDate>"
               if vat.get("liquidation_date") else "")
            + f"<uidVat><uidOrganisationIdCategorie xmlns=\"{ECH97}\">CHE"
            f"</uidOrganisationIdCategorie><uidOrganisationId xmlns=\"{ECH97}\">{digits}"
            "</uidOrganisationId></uidVat></vatRegisterInformation>"
        )
    return (
        f'<organisationType xmlns="{UID5_NS}"><organisation>'
        f'<organisation xmlns="{ECH108}">'
        f'<organisationIdentification xmlns="{ECH98}">'
        f'<uid xmlns="{ECH97}"><uidOrganisationIdCategorie>CHE</uidOrganisationIdCategorie>'
        f"<uidOrganisationId>{digits}</uidOrganisationId></uid>"
        f"<organisationName>{escape(org['name'])}</organisationName>"
        f"<organisationLegalName>{escape(org['name'])}</organisationLegalName>"
        f"<legalForm>{escape(org.get('legal_form', '0106'))}</legalForm>"
        "</organisationIdentification>"
        f"<address><addressCategory>LEGAL</addressCategory>{address}</address>"
        "</organisation>"
        "<uidregInformation><uidregStatusEnterpriseDetail>3</uidregStatusEnterpriseDetail>"
        "<uidregPublicStatus>1</uidregPublicStatus></uidregInformation>"
        f"{vat_xml}</organisation></organisationType>"
    )


def _read(data: bytes) -> tuple[str, dict[str, str]]:
    """The operation and its fields (``uid`` flattened to its digits)."""
    root = parse_xml(data)
    body = root.find(f"{{{SOAP_NS}}}Body")
    if root.tag != f"{{{SOAP_NS}}}Envelope" or body is None or len(body) != 1:
        raise MalformedRequest("not a SOAP 1.1 envelope with one body element")
    call = body[0]
    operation = call.tag.split("}")[-1]
    if operation not in OPERATIONS or not call.tag.startswith(f"{{{UID_NS}}}"):
        raise MalformedRequest(f"unknown operation {operation}")
    fields: dict[str, str] = {}
    for child in call:
        name = child.tag.split("}")[-1]
        if len(child):
            for part in child:
                fields[part.tag.split("}")[-1]] = (part.text or "").strip()
        else:
            fields[name] = (child.text or "").strip()
    return operation, fields


@bp.post(SOAP_PATH)
def service() -> Response:
    """Answer one SOAP call."""
    state = _state()
    knobs = state.get_config()
    try:
        operation, fields = _read(request.get_data(cache=False))
    except MalformedRequest:
        state.count_call("malformed")
        return _fault("Data_validation_failed", "The request could not be read.", "unknown")
    state.count_call(operation)  # when it arrives, so a slow answer counts for its own test
    time.sleep(knobs["latency_ms"] / 1000)
    limit = knobs["rate_limit_per_min"]
    if knobs["fail"] == "limit" or (limit and state.admit("public", limit, 60.0) is not None):
        return _fault("Request_limit_exceeded",
                      f"Maximum number of {limit or 20} requests per 1 minute(s) exceeded",
                      operation)
    if knobs["fail"] == "http_500":
        return _fault("Internal_error", "An internal error occurred.", operation, server=True)
    if knobs["fail"] == "http_503":
        return Response(GATEWAY_PAGE, status=503, content_type="text/html")
    if operation == "GetByUID":
        digits = fields.get("uidOrganisationId", "")
        if fields.get("uidOrganisationIdCategorie") != "CHE" or not re.fullmatch(
                r"[0-9]{9}", digits):
            return _fault("Data_validation_failed", "The UID is not valid.", operation)
        org = state.organisations.get(digits)
        inner = organisation_xml(digits, org) if org else ""
        response = _result(operation, f"<GetByUIDResult>{inner}</GetByUIDResult>")
    else:
        field = "vatNumber" if operation == "ValidateVatNumber" else "uid"
        digits = uid_digits(fields.get(field, "")) or ""
        if not digits:
            return _fault("Data_validation_failed", f"The {field} is not valid.", operation)
        org = state.organisations.get(digits)
        if operation == "ValidateVatNumber":
            valid = bool(org and org.get("vat", {}).get("status") == 2)
        else:
            valid = org is not None
        response = _result(operation,
                           f"<{operation}Result>{str(valid).lower()}</{operation}Result>")
    if knobs["fail"] == "malformed":
        text = response.get_data(as_text=True)
        return Response(text[: len(text) // 2], status=200, content_type=XML)
    return response


@bp.get(SOAP_PATH)
def wsdl() -> Response:
    """The WSDL for ``GET ?wsdl``, with ``soap:address`` pointing here; any other GET is 405."""
    if not any(key.lower() == "wsdl" for key in request.args):
        return Response("POST a SOAP 1.1 request, or GET ?wsdl\n", status=405,
                        headers={"Allow": "GET, POST"}, content_type="text/plain")
    text = _state().wsdl_path.read_text(encoding="utf-8")
    here = request.host_url.rstrip("/") + SOAP_PATH
    text = re.sub(r'(<soap:address location=")[^"]*(")', rf"\g<1>{here}\g<2>", text)
    return Response(text, content_type=XML)


def load_organisations(path: Path) -> dict[str, dict[str, Any]]:
    """The demo register ``{"organisations": [{"uid": "CHE…", ...}]}`` by its 9 digits."""
    rows = json.loads(path.read_text(encoding="utf-8"))["organisations"]
    return {row["uid"].removeprefix("CHE"): row for row in rows}


def config_from_env(environ: Mapping[str, str]) -> dict[str, Any]:
    """Knobs from ``TRACE30_SIM_UID_LATENCY_MS``, ``TRACE30_SIM_UID_FAIL`` and
    ``TRACE30_SIM_UID_RATE_LIMIT_PER_MIN``.

    >>> config_from_env({"TRACE30_SIM_UID_RATE_LIMIT_PER_MIN": "0"})
    {'rate_limit_per_min': 0}
    """
    return from_env(environ, "TRACE30_SIM_UID_",
                    {"latency_ms": float, "fail": str, "rate_limit_per_min": int})


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the simulator; ``None`` reads the knobs from the environment. Raises
    :class:`ConfigError` on an unknown knob or a bad value."""
    settings = dict(config_from_env(os.environ) if config is None else config)
    data_path = Path(settings.pop("data_path", DEFAULT_DATA_PATH))
    wsdl_path = Path(settings.pop("wsdl_path", DEFAULT_WSDL_PATH))
    state = UidState(merge(DEFAULTS, CHECKS, settings), load_organisations(data_path),
                     wsdl_path)
    return simulator_app(__name__, "uid_simulator", bp, state, 64 * 1024)
