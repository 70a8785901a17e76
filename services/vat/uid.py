"""Switzerland: the UID register's public SOAP services (Federal Statistical Office).

SOAP 1.1 at ``TRACE30_UID_URL`` (``https://www.uid-wse.admin.ch/V5.0/PublicServices.svc``),
namespace ``http://www.uid.admin.ch/xmlns/uid-wse``, with zeep and trace30's own WSDL
(``wsdl/uid-wse-public.wsdl``, nothing downloaded). A check is two calls:

1. ``ValidateVatNumber(vatNumber)``: ``true`` when the number is active in the VAT register
   (the answer about the number);
2. for a valid number, ``GetByUID(uid)``: the organisation's name and address (evidence). If
   that second call fails the answer stays ``valid``, without name and address.

Anonymous use is limited to 20 requests a minute (``TRACE30_UID_RATE_PER_MIN``, shared by every
process through Redis). Fault table (SOAP ``faultstring`` → meaning):

==========================  ==============================================================
``Data_validation_failed``  the register refused the number's format: ``invalid``
``Request_limit_exceeded``  throttle: ``unavailable``, retryable
``Permission_denied``       we are refused: ``unavailable``, not retryable (attention)
any other fault             outage: ``unavailable``, retryable
HTTP error page, timeout    outage: ``unavailable``, retryable
unparsable answer           outage (``UPSTREAM_BAD_RESPONSE``): ``unavailable``
==========================  ==============================================================
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import requests
import zeep
import zeep.exceptions

from services.vat.sources import SourceAnswer, join_lines, new_session
from services.vat.vies import DeadlineTransport, soap_fault
from shared import outbound
from shared.upstream import Fault, UpstreamError

log = logging.getLogger(__name__)

WSDL_PATH = Path(__file__).with_name("wsdl") / "uid-wse-public.wsdl"
BINDING = "{http://www.uid.admin.ch/xmlns/uid-wse}BasicHttpBinding_IPublicServices"
TITLE = "The UID register"

#: faultstring → what it means.
FAULTS: dict[str, Fault] = {
    "Data_validation_failed": Fault.INVALID,
    "Request_limit_exceeded": Fault.THROTTLED,
    "Permission_denied": Fault.REFUSED,
}


class UidRegister:
    """The UID register adapter, over SOAP with zeep (one per process)."""

    name = "uid"

    def __init__(self, url: str, *, connect_timeout_s: float = 3.0, read_timeout_s: float = 8.0,
                 session: requests.Session | None = None, wsdl_path: Path = WSDL_PATH) -> None:
        self.url = url
        self.transport = DeadlineTransport(session or new_session(accept="text/xml"),
                                           connect_timeout_s, read_timeout_s, title=TITLE,
                                           http_code=True, cap_connect=True)
        settings = zeep.Settings(strict=True, force_https=False, forbid_dtd=True,
                                 forbid_entities=True, forbid_external=True,
                                 xml_huge_tree=False)
        client = zeep.Client(str(wsdl_path), transport=self.transport, settings=settings)
        self._service = client.create_service(BINDING, url)

    def ready(self) -> None:
        """The WSDL is loaded and the binding found (both happen in ``__init__``)."""
        if self._service is None:
            raise RuntimeError("UID register WSDL not loaded")

    def check(self, number: str, *, requester: str | None = None,
              timeout_s: float | None = None) -> SourceAnswer:
        """See :meth:`services.vat.sources.VatSource.check` (``number``: the 9 UID digits)."""
        valid = self._call("ValidateVatNumber", timeout_s, vatNumber=f"CHE{number}")
        if not isinstance(valid, bool):
            raise UpstreamError(f"{TITLE} answered ValidateVatNumber without a result",
                                Fault.BAD_RESPONSE)
        if not valid:
            return SourceAnswer(False, detail="The UID register reports the number as not "
                                "active in the Swiss VAT register.")
        try:
            result = self._call("GetByUID", timeout_s, uid={
                "uidOrganisationIdCategorie": "CHE", "uidOrganisationId": int(number)})
        except UpstreamError as e:
            # Validity is established; only the evidence of name and address is missing.
            log.warning("UID register details unavailable", extra={"fault": e.code})
            return SourceAnswer(True)
        return _details(result)

    def _call(self, operation: str, timeout_s: float | None, **kwargs: Any) -> Any:
        self.transport.set_read_timeout(timeout_s)
        try:
            return getattr(self._service, operation)(**kwargs)
        except (UpstreamError, outbound.NotSent):
            raise
        except zeep.exceptions.Fault as e:
            code = (e.message or "").strip() or "UNKNOWN_FAULT"
            raise UpstreamError(f"{TITLE} fault {code}", FAULTS.get(code, Fault.OUTAGE),
                                code=code) from e
        except Exception as e:
            fault = soap_fault(e, TITLE, http_code=True)
            if fault is e:
                raise
            raise fault from e
        finally:
            self.transport.set_read_timeout(None)


def _details(result: Any) -> SourceAnswer:
    """Name and address of the first organisation GetByUID answered (a UID may have several
    commercial-register seats; they share the name)."""
    try:
        # zeep unwraps the ArrayOf… type to a list; keep both shapes.
        items = result if isinstance(result, list) else (
            getattr(result, "organisationType", None) or [])
        if not items:
            return SourceAnswer(True)
        org = items[0].organisation.organisation
        ident = org.organisationIdentification
        name = ident.organisationLegalName or ident.organisationName
        addresses = org.address or []
        address = None
        if addresses:
            a = addresses[0]
            address = join_lines(
                a.addressLine1,
                " ".join(p for p in (a.street, a.houseNumber) if p),
                " ".join(p for p in (a.swissZipCode or a.foreignZipCode, a.town) if p),
                a.countryIdISO2,
            )
        return SourceAnswer(True, name=name, address=address)
    except (AttributeError, IndexError, TypeError) as e:
        raise UpstreamError(f"{TITLE} answer has an unexpected shape: {type(e).__name__}",
                            Fault.BAD_RESPONSE) from e
