"""UK Companies House public data API: ``GET {base}/company/{company_number}``.

Authentication is HTTP Basic with the API key as user name and an empty password. The
``company_status`` enumeration (Companies House's ``api-enumerations``, ``constants.yml``) is
mapped by :data:`ACTIVE_STATUSES`: ``active``, ``open``, ``registered`` and
``voluntary-arrangement`` (a company trading under a CVA) are ``active``; ``dissolved``,
``liquidation``, ``receivership``, ``administration``, ``insolvency-proceedings``,
``converted-closed``, ``closed`` and ``removed`` are ``inactive``. ``company_status_detail``
(e.g. ``active-proposal-to-strike-off``) is kept as ``status_detail``.
"""

from __future__ import annotations

from typing import Any

import requests

from services.registry.registers import (
    ACTIVE,
    INACTIVE,
    RegisterRecord,
    http,
)
from shared.upstream import Fault, UpstreamError, json_of

ACTIVE_STATUSES = frozenset({"active", "open", "registered", "voluntary-arrangement"})
RECORD_URL = "https://find-and-update.company-information.service.gov.uk/company/{number}"


class CompaniesHouse(http.HttpRegister):
    """The Companies House adapter (one per process). Needs an API key."""

    source = "gb_companies_house"
    title = "UK Companies House"

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        session: requests.Session,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 8.0,
    ) -> None:
        # The key is HTTP Basic's user name, with an empty password.
        super().__init__(base_url, session=session, connect_timeout_s=connect_timeout_s,
                         read_timeout_s=read_timeout_s, auth=(api_key, ""))

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        response = self.call("GET", f"/company/{http.segment(number)}", timeout_s=timeout_s)
        if response.status_code != 200:
            return None
        return parse(json_of(response, self.title), number)


def _street(office: dict[str, Any]) -> str | None:
    """The street line of a registered office: ``premises`` leads it when it is a house number
    (``10``, ``10A``), not when it names a suite or a building.

    >>> _street({"premises": "10", "address_line_1": "High Street"})
    '10 High Street'
    >>> _street({"premises": "Suite 4", "address_line_1": "10 High Street"})
    '10 High Street'
    """
    premises, line = office.get("premises"), office.get("address_line_1")
    if premises and str(premises).strip()[:1].isdigit():
        return " ".join(str(p).strip() for p in (premises, line) if p) or None
    return line or None


def parse(document: Any, number: str) -> RegisterRecord:
    """A record from a company profile."""
    try:
        raw = str(document["company_status"])
        office = document.get("registered_office_address") or {}
        return RegisterRecord(
            status=ACTIVE if raw in ACTIVE_STATUSES else INACTIVE,
            status_raw=raw,
            status_detail=document.get("company_status_detail"),
            registered_name=document.get("company_name"),
            legal_form=document.get("type"),
            address=http.join_address(
                office.get("care_of"), office.get("po_box"), office.get("premises"),
                office.get("address_line_1"), office.get("address_line_2"),
                office.get("locality"), office.get("region"), office.get("postal_code"),
                office.get("country"),
            ),
            address_parts=http.address_parts(
                street=_street(office), postcode=office.get("postal_code"),
                city=office.get("locality"), country=office.get("country")),
            country="GB",
            ceased_on=document.get("date_of_cessation"),
            url=RECORD_URL.format(number=number),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"Companies House profile has an unexpected shape: {e!r}",
                            Fault.BAD_RESPONSE) from e
