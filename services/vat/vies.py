"""VIES, the Commission's VAT number check: the interface, its SOAP adapter and its faults.

:class:`Vies` is the interface the rest of the VAT service uses; :class:`ZeepVies` is the real
implementation, talking SOAP to the endpoint in ``TRACE30_VIES_URL`` (the public service by
default, the project's simulator in sandbox). It is built once per process from the WSDL bundled
in ``wsdl/`` (nothing is downloaded), with one pooled ``requests.Session``, hardened XML parsing,
and a connect and read timeout on every call.

Everything that can go wrong is translated here into :class:`shared.upstream.UpstreamError`, so
no other module imports zeep or requests. Faults are classified by :data:`FAULTS`: VIES sends
the fault code as the SOAP ``faultstring``, sometimes with HTTP 200 and sometimes with 500.

A fault is classified where it arises: an error raised before the request leaves the process
(zeep serialising the envelope, lxml refusing a control character, a URL or header that cannot
be sent) is :class:`shared.outbound.NotSent`, never an ``UpstreamError``: VIES was not asked,
so it is not retried, not counted by the member state's circuit breaker and never
``unavailable``. Text VIES cannot carry is refused before zeep sees it, naming the field.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Protocol

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from shared import outbound, upstream
from shared.upstream import Fault, UpstreamError

WSDL_PATH = Path(__file__).with_name("wsdl") / "checkVatService.wsdl"
BINDING = "{urn:ec.europa.eu:taxud:vies:services:checkVat}checkVatBinding"


#: Every fault code VIES documents (and SERVER_BUSY, from older WSDLs), with its meaning; the
#: REST front end (:mod:`services.vat.vies_rest`) sends the same codes.
FAULTS: dict[str, Fault] = {
    "INVALID_INPUT": Fault.INVALID,  # the number itself was refused: a definitive answer
    "SERVICE_UNAVAILABLE": Fault.OUTAGE,
    "MS_UNAVAILABLE": Fault.OUTAGE,
    "TIMEOUT": Fault.OUTAGE,  # the member state's own timeout, not ours
    "GLOBAL_MAX_CONCURRENT_REQ": Fault.THROTTLED,
    "GLOBAL_MAX_CONCURRENT_REQ_TIME": Fault.THROTTLED,
    "MS_MAX_CONCURRENT_REQ": Fault.THROTTLED,
    "MS_MAX_CONCURRENT_REQ_TIME": Fault.THROTTLED,
    "SERVER_BUSY": Fault.THROTTLED,
    "INVALID_REQUESTER_INFO": Fault.REFUSED,  # our requester, IP or number is blocked
    "VAT_BLOCKED": Fault.REFUSED,
    "IP_BLOCKED": Fault.REFUSED,
}


class ViesFault(UpstreamError):
    """VIES answered with a fault (SOAP ``faultstring``, REST ``errorWrappers``); ``code`` is
    VIES's own, its meaning :data:`FAULTS` (an undocumented fault is an outage: retried, never
    taken as a verdict)."""

    def __init__(self, code: str, front: str = "VIES") -> None:
        super().__init__(f"{front} fault {code}", FAULTS.get(code, Fault.OUTAGE), code=code)


@dataclass(frozen=True)
class TraderQuery:
    """The trader details sent with ``checkVatApprox`` for VIES to compare."""

    name: str | None = None
    company_type: str | None = None
    street: str | None = None
    postcode: str | None = None
    city: str | None = None


@dataclass(frozen=True)
class ViesAnswer:
    """VIES's answer about one number, as VIES gave it (``---`` and blanks already removed)."""

    country_code: str
    vat_number: str
    valid: bool
    request_date: date | None
    name: str | None = None
    address: str | None = None
    trader: dict[str, str | None] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)
    request_identifier: str | None = None


class Vies(Protocol):
    """The VIES check, as the VAT service needs it."""

    def check(
        self,
        *,
        country_code: str,
        number: str,
        trader: TraderQuery | None = None,
        requester: tuple[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> ViesAnswer:
        """Ask VIES about ``country_code`` + ``number``; raise :class:`UpstreamError` on no
        answer.

        With ``trader`` or ``requester`` (country code, number) this is ``checkVatApprox``,
        which returns match codes and, with a requester, a consultation number.
        """
        ...

    def ready(self) -> None:
        """Raise if the client cannot make calls (for ``/readyz``)."""
        ...


#: zeep's message when an error reply holds no <Fault> element.
_ZEEP_NO_FAULT_ELEMENT = "Unknown fault occured"

_MATCH_CODES = {"1": "valid", "2": "invalid", "3": "not_processed"}
_MATCH_FIELDS = {
    "name": "traderNameMatch",
    "company_type": "traderCompanyTypeMatch",
    "street": "traderStreetMatch",
    "postcode": "traderPostcodeMatch",
    "city": "traderCityMatch",
}


def clean_text(value: Any) -> str | None:
    """VIES's way of saying "not disclosed" (``---``, blanks) becomes None; lines are trimmed.

    >>> clean_text("---") is None, clean_text("  ") is None
    (True, True)
    >>> clean_text("WHITE CITY PLACE\\n\\n201 WOOD LANE  ")
    'WHITE CITY PLACE\\n201 WOOD LANE'
    """
    if value is None:
        return None
    lines = [line.strip() for line in str(value).strip().splitlines()]
    text = "\n".join(line for line in lines if line)
    return None if not text or set(text) <= {"-"} else text


def soap_fault(e: Exception, title: str, *, http_code: bool = False) -> Exception:
    """What an exception of a zeep call that is not a SOAP fault means (the SOAP adapters'
    one transport table): a timeout, an HTTP error (``UPSTREAM_HTTP_<status>`` with
    ``http_code``), no connection, an unparsable answer; any other exception is returned as it
    is (a bug, to raise again)."""
    if isinstance(e, requests.Timeout):
        return UpstreamError(f"{title} did not answer in time", Fault.TIMEOUT)
    if isinstance(e, zeep.exceptions.TransportError):
        if 200 <= (e.status_code or 0) < 300:  # zeep's word for "200 with unparsable XML"
            return UpstreamError(f"{title} answered unparsable XML", Fault.BAD_RESPONSE)
        return UpstreamError(f"{title} answered HTTP {e.status_code}", Fault.UNREACHABLE,
                             code=f"UPSTREAM_HTTP_{e.status_code}" if http_code else None)
    if isinstance(e, requests.RequestException):
        return UpstreamError(f"{title} could not be reached: {type(e).__name__}",
                             Fault.UNREACHABLE)
    if isinstance(e, zeep.exceptions.Error | ValueError):
        # XMLSyntaxError, ValidationError, DTDForbidden, ... and lxml's own parse errors
        return UpstreamError(f"{title} answered unparsable content: {type(e).__name__}",
                             Fault.BAD_RESPONSE)
    return e


class DeadlineTransport(Transport):
    """zeep transport whose POST timeout is set per call (and per thread) by the caller; an
    HTTP error that is not a SOAP answer (a proxy's page) is :data:`Fault.UNREACHABLE` (code
    ``UPSTREAM_HTTP_<status>`` with ``http_code``). Shared by the VIES and UID adapters."""

    def __init__(self, session: requests.Session, connect_timeout_s: float,
                 read_timeout_s: float, *, title: str = "VIES", http_code: bool = False,
                 cap_connect: bool = False) -> None:
        super().__init__(  # type: ignore[no-untyped-call]  # zeep is untyped
            session=session, timeout=5, operation_timeout=read_timeout_s)
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.title = title
        self.http_code = http_code
        self.cap_connect = cap_connect
        self._local = threading.local()

    def set_read_timeout(self, seconds: float | None) -> None:
        self._local.read_timeout_s = seconds
        self._local.posted = False

    def posted(self) -> bool:
        """Whether this thread's call got as far as sending (zeep built the envelope)."""
        return bool(getattr(self._local, "posted", False))

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        self._local.posted = True
        read = getattr(self._local, "read_timeout_s", None) or self.read_timeout_s
        connect = min(self.connect_timeout_s, read) if self.cap_connect else self.connect_timeout_s
        response = outbound.send(
            self.session, "POST", address, data=message, headers=headers,
            timeout=(connect, read), what=self.title,
        )
        media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if response.status_code >= 400 and "xml" not in media_type:
            # A proxy's or load balancer's error page: no SOAP answer to parse.
            status = response.status_code
            raise UpstreamError(f"{self.title} answered HTTP {status} ({media_type})",
                                Fault.UNREACHABLE,
                                code=f"UPSTREAM_HTTP_{status}" if self.http_code else None)
        return response


def new_session(pool_size: int = 10) -> requests.Session:
    """A pooled session for VIES (keep-alive saves the TLS handshake on every check)."""
    return upstream.new_session("trace30-vat/0.1 (+https://trace30.dev)", pool_size)


class ZeepVies:
    """The real VIES, over SOAP with zeep. Build one per process and share it."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 10.0,
        session: requests.Session | None = None,
        wsdl_path: Path = WSDL_PATH,
    ) -> None:
        self.url = url
        self.transport = DeadlineTransport(
            session or new_session(), connect_timeout_s, read_timeout_s
        )
        settings = zeep.Settings(
            strict=True,
            force_https=False,  # the simulator speaks plain http on loopback
            forbid_dtd=True,
            forbid_entities=True,
            forbid_external=True,
            xml_huge_tree=False,
        )
        client = zeep.Client(str(wsdl_path), transport=self.transport, settings=settings)
        self._client = client
        self._service = client.create_service(BINDING, url)

    def ready(self) -> None:
        """The WSDL is loaded and the binding found (both happen in ``__init__``)."""
        if self._service is None:
            raise RuntimeError("VIES WSDL not loaded")

    def check(
        self,
        *,
        country_code: str,
        number: str,
        trader: TraderQuery | None = None,
        requester: tuple[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> ViesAnswer:
        """See :meth:`Vies.check`. Raises :class:`shared.outbound.NotSent` (``fields`` named
        as the VAT API names them) when the request cannot be built: VIES was not asked."""
        refused = unsendable_fields(country_code, number, trader, requester)
        if refused:
            raise outbound.NotSent("The VIES request cannot carry these fields.", refused)
        self.transport.set_read_timeout(timeout_s)
        approx = trader is not None or requester is not None
        try:
            try:
                if approx:
                    t = trader or TraderQuery()
                    reply = self._service.checkVatApprox(
                        countryCode=country_code,
                        vatNumber=number,
                        traderName=t.name,
                        traderCompanyType=t.company_type,
                        traderStreet=t.street,
                        traderPostcode=t.postcode,
                        traderCity=t.city,
                        requesterCountryCode=requester[0] if requester else None,
                        requesterVatNumber=requester[1] if requester else None,
                    )
                else:
                    reply = self._service.checkVat(countryCode=country_code, vatNumber=number)
            except (UpstreamError, outbound.NotSent):
                raise
            except Exception as e:
                if not self.transport.posted():
                    # zeep or lxml failed building the envelope: nothing reached VIES.
                    raise outbound.NotSent(
                        f"The VIES request could not be built ({type(e).__name__})."
                    ) from e
                raise
        except zeep.exceptions.Fault as e:
            if e.code is None and e.message == _ZEEP_NO_FAULT_ELEMENT:
                raise UpstreamError("VIES answered an error without a SOAP fault",
                                    Fault.BAD_RESPONSE) from e
            raise ViesFault((e.message or "").strip() or "UNKNOWN_FAULT") from e
        except Exception as e:
            fault = soap_fault(e, "VIES")
            if fault is e:
                raise
            raise fault from e
        finally:
            self.transport.set_read_timeout(None)
        return _answer(reply, approx)


def unsendable_fields(
    country_code: str,
    number: str,
    trader: TraderQuery | None,
    requester: tuple[str, str] | None,
) -> dict[str, str]:
    """The fields (as the VAT API names them) whose text no SOAP request can carry.

    >>> list(unsendable_fields("DE", "100", TraderQuery(name="A\\x01B", city="Köln"), None))
    ['trader.name']
    """
    values: dict[str, str | None] = {"vat_number": country_code + number}
    if trader is not None:
        values.update({f"trader.{name}": getattr(trader, name) for name in _MATCH_FIELDS})
    if requester is not None:
        values["requester_vat_number"] = "".join(requester)
    return outbound.unsendable(values)


def _answer(reply: Any, approx: bool) -> ViesAnswer:
    """Turn zeep's reply object into a :class:`ViesAnswer`."""
    try:
        if approx:
            trader = {
                "name": clean_text(reply.traderName),
                "company_type": clean_text(reply.traderCompanyType),
                "street": clean_text(reply.traderStreet),
                "postcode": clean_text(reply.traderPostcode),
                "city": clean_text(reply.traderCity),
            }
            match = {
                ours: _MATCH_CODES[str(getattr(reply, theirs))]
                for ours, theirs in _MATCH_FIELDS.items()
                if getattr(reply, theirs, None) not in (None, "")
            }
            address = clean_text(reply.traderAddress) or clean_text(
                "\n".join(v for v in (trader["street"], trader["postcode"], trader["city"]) if v)
            )
            return ViesAnswer(
                country_code=reply.countryCode,
                vat_number=reply.vatNumber or "",
                valid=bool(reply.valid),
                request_date=reply.requestDate,
                name=trader["name"],
                address=address,
                trader=trader,
                match=match,
                request_identifier=clean_text(reply.requestIdentifier),
            )
        return ViesAnswer(
            country_code=reply.countryCode,
            vat_number=reply.vatNumber or "",
            valid=bool(reply.valid),
            request_date=reply.requestDate,
            name=clean_text(reply.name),
            address=clean_text(reply.address),
        )
    except (AttributeError, KeyError, TypeError) as e:
        raise UpstreamError(f"VIES answer has an unexpected shape: {type(e).__name__}",
                            Fault.BAD_RESPONSE) from e
