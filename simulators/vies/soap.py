"""SOAP 1.1 wire format of the VIES simulator: reading requests and writing answers.

Requests are parsed with a hardened lxml parser (no entity expansion, no network, no DTD
loading, DOCTYPE refused). Answers follow the current VIES format: an ``env:`` envelope with an
empty ``<env:Header/>`` and a payload prefixed ``ns2:`` in the types namespace; faults are
``<env:Fault>`` with an unqualified ``faultcode``/``faultstring`` whose ``faultstring`` is the
VIES error code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from lxml import etree

SOAP_ENV_NS = "http://schemas.xmlsoap.org/soap/envelope/"
WSDL_SOAP_NS = "http://schemas.xmlsoap.org/wsdl/soap/"
SERVICE_NS = "urn:ec.europa.eu:taxud:vies:services:checkVat"
TYPES_NS = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"

CHECK_VAT = "checkVat"
CHECK_VAT_APPROX = "checkVatApprox"

#: Request fields each operation accepts, in schema order.
REQUEST_FIELDS: dict[str, tuple[str, ...]] = {
    CHECK_VAT: ("countryCode", "vatNumber"),
    CHECK_VAT_APPROX: (
        "countryCode",
        "vatNumber",
        "traderName",
        "traderCompanyType",
        "traderStreet",
        "traderPostcode",
        "traderCity",
        "requesterCountryCode",
        "requesterVatNumber",
    ),
}

#: Trader detail fields of a checkVatApprox answer, in schema order.
APPROX_TRADER_FIELDS: tuple[str, ...] = (
    "traderName",
    "traderCompanyType",
    "traderAddress",
    "traderStreet",
    "traderPostcode",
    "traderCity",
)

#: Match-code fields of a checkVatApprox answer, in schema order.
APPROX_MATCH_FIELDS: tuple[str, ...] = (
    "traderNameMatch",
    "traderCompanyTypeMatch",
    "traderStreetMatch",
    "traderPostcodeMatch",
    "traderCityMatch",
)

GATEWAY_ERROR_PAGE = (
    b"<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n"
    b"<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n"
    b"</body>\r\n</html>\r\n"
)


class MalformedRequest(ValueError):
    """The request body is not a well-formed, acceptable SOAP 1.1 VIES request."""


@dataclass(frozen=True)
class SoapRequest:
    """A parsed VIES request: the operation name and the fields sent (text, stripped)."""

    operation: str
    fields: Mapping[str, str]


def _hardened_parser() -> etree.XMLParser:
    """Return an XML parser that expands no entities and loads nothing from outside."""
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )


def parse_xml(data: bytes) -> etree._Element:
    """Parse ``data`` with the hardened parser, refusing any DOCTYPE.

    Raises :class:`MalformedRequest` when the document is not well-formed or has a DOCTYPE.
    """
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise MalformedRequest("DOCTYPE and entity declarations are not accepted")
    try:
        root = etree.fromstring(data, _hardened_parser())
    except etree.XMLSyntaxError as exc:
        raise MalformedRequest(f"not well-formed XML: {exc}") from exc
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise MalformedRequest("DOCTYPE is not accepted")
    return root


def parse_request(data: bytes) -> SoapRequest:
    """Read a SOAP 1.1 ``checkVat`` or ``checkVatApprox`` request.

    Fields must be qualified in the types namespace (the schema is ``elementFormDefault=
    "qualified"``). Unknown or repeated fields, nested content, a missing body or an unknown
    operation raise :class:`MalformedRequest`; an empty body too.
    """
    if not data or not data.strip():
        raise MalformedRequest("empty request")
    root = parse_xml(data)
    if root.tag != f"{{{SOAP_ENV_NS}}}Envelope":
        raise MalformedRequest("root element is not a SOAP 1.1 Envelope")
    body = root.find(f"{{{SOAP_ENV_NS}}}Body")
    if body is None:
        raise MalformedRequest("no SOAP Body")
    payloads = [child for child in body if isinstance(child.tag, str)]
    if len(payloads) != 1:
        raise MalformedRequest("the SOAP Body must hold exactly one element")
    payload = etree.QName(payloads[0])
    if payload.namespace != TYPES_NS or payload.localname not in REQUEST_FIELDS:
        raise MalformedRequest(f"unknown operation {payloads[0].tag}")
    allowed = REQUEST_FIELDS[payload.localname]
    fields: dict[str, str] = {}
    for child in payloads[0]:
        if not isinstance(child.tag, str):
            continue
        name = etree.QName(child)
        if name.namespace != TYPES_NS or name.localname not in allowed:
            raise MalformedRequest(f"unexpected element {child.tag}")
        if name.localname in fields:
            raise MalformedRequest(f"repeated element {name.localname}")
        if len(child):
            raise MalformedRequest(f"element {name.localname} must hold text only")
        fields[name.localname] = (child.text or "").strip()
    return SoapRequest(operation=payload.localname, fields=fields)


def _vies_timezone() -> tzinfo | None:
    """Return Brussels time, where VIES runs; ``None`` (local time) if tzdata is missing."""
    try:
        return ZoneInfo("Europe/Brussels")
    except ZoneInfoNotFoundError:
        return None


def request_date(now: datetime | None = None) -> str:
    """Return today's date as VIES writes ``requestDate``: ``2026-11-28+01:00``."""
    if now is None:
        zone = _vies_timezone()
        now = datetime.now(zone) if zone is not None else datetime.now().astimezone()
    moment = now
    offset = moment.strftime("%z") or "+0000"
    return f"{moment:%Y-%m-%d}{offset[:3]}:{offset[3:]}"


def _envelope() -> tuple[etree._Element, etree._Element]:
    """Return a new ``env:Envelope`` with an empty header, and its ``env:Body``."""
    envelope = etree.Element(f"{{{SOAP_ENV_NS}}}Envelope", nsmap={"env": SOAP_ENV_NS})
    etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Header")
    body = etree.SubElement(envelope, f"{{{SOAP_ENV_NS}}}Body")
    return envelope, body


def _serialize(envelope: etree._Element) -> bytes:
    return bytes(etree.tostring(envelope, encoding="UTF-8", xml_declaration=False))


def _add(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{{{TYPES_NS}}}{name}").text = text


def render_check_vat(
    country_code: str, vat_number: str, valid: bool, name: str, address: str, date: str
) -> bytes:
    """Return a ``checkVatResponse`` envelope."""
    envelope, body = _envelope()
    payload = etree.SubElement(body, f"{{{TYPES_NS}}}checkVatResponse", nsmap={"ns2": TYPES_NS})
    _add(payload, "countryCode", country_code)
    _add(payload, "vatNumber", vat_number)
    _add(payload, "requestDate", date)
    _add(payload, "valid", "true" if valid else "false")
    _add(payload, "name", name)
    _add(payload, "address", address)
    return _serialize(envelope)


def render_check_vat_approx(
    country_code: str,
    vat_number: str,
    valid: bool,
    date: str,
    trader: Mapping[str, str],
    matches: Mapping[str, str],
    request_identifier: str,
) -> bytes:
    """Return a ``checkVatApproxResponse`` envelope.

    ``trader`` maps the names in :data:`APPROX_TRADER_FIELDS` to text (missing ones are left
    out); ``matches`` maps the names in :data:`APPROX_MATCH_FIELDS` to ``"1"``/``"2"``/``"3"``
    (missing ones are left out).
    """
    envelope, body = _envelope()
    payload = etree.SubElement(
        body, f"{{{TYPES_NS}}}checkVatApproxResponse", nsmap={"ns2": TYPES_NS}
    )
    _add(payload, "countryCode", country_code)
    _add(payload, "vatNumber", vat_number)
    _add(payload, "requestDate", date)
    _add(payload, "valid", "true" if valid else "false")
    for field in APPROX_TRADER_FIELDS:
        if field in trader:
            _add(payload, field, trader[field])
    for field in APPROX_MATCH_FIELDS:
        if field in matches:
            _add(payload, field, matches[field])
    _add(payload, "requestIdentifier", request_identifier)
    return _serialize(envelope)


def render_fault(code: str, with_faultcode: bool = True) -> bytes:
    """Return a SOAP fault envelope whose ``faultstring`` is ``code``.

    ``faultcode`` is ``env:Server`` as VIES sends it (even for bad input); with
    ``with_faultcode=False`` it is left out, as in a captured legacy ``MS_UNAVAILABLE`` fault.
    """
    envelope, body = _envelope()
    fault = etree.SubElement(body, f"{{{SOAP_ENV_NS}}}Fault")
    if with_faultcode:
        etree.SubElement(fault, "faultcode").text = "env:Server"
    etree.SubElement(fault, "faultstring").text = code
    return _serialize(envelope)


def render_truncated(country_code: str, vat_number: str, date: str) -> bytes:
    """Return a ``checkVatResponse`` cut off halfway: unparsable XML."""
    whole = render_check_vat(country_code, vat_number, True, "John Doe", "---", date)
    return whole[: len(whole) // 2]


def wsdl_with_address(wsdl: bytes, location: str) -> bytes:
    """Return the WSDL document ``wsdl`` with every ``soap:address`` pointing at ``location``."""
    root = parse_xml(wsdl)
    for address in root.iter(f"{{{WSDL_SOAP_NS}}}address"):
        address.set("location", location)
    return bytes(etree.tostring(root, encoding="UTF-8", xml_declaration=True))
