"""Denmark, CVR system-to-system access (Erhvervsstyrelsen's Elasticsearch).

``POST {base}/cvr-permanent/virksomhed/_search`` with HTTP Basic credentials issued by
Erhvervsstyrelsen, a ``term`` query on ``Vrvirksomhed.cvrNummer`` and ``_source`` limited to
what the check needs (a full record is hundreds of kilobytes). ``hits`` empty: ``not_found``.

Status: ``virksomhedMetadata.sammensatStatus`` (e.g. ``NORMAL``, ``Aktiv``, ``UNDERKONKURS``,
``OPLØSTEFTERKONKURS``, ``TVANGSOPLØST``, ``OPHØRT``), compared without case and spaces:
:data:`ACTIVE_STATUSES` are ``active``, every other value ``inactive``. Without a status, a
life span (``livsforloeb``) that has ended means ``inactive``.
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
from shared.outbound import NotSent
from shared.upstream import Fault, UpstreamError, json_of

#: ``sammensatStatus`` values of a company that trades (normalised: upper case, no spaces).
ACTIVE_STATUSES = frozenset({"NORMAL", "AKTIV", "UNDERREKONSTRUKTION", "UNDERREASSUMERING"})
RECORD_URL = "https://datacvr.virk.dk/enhed/virksomhed/{cvr}"
SOURCE_FIELDS = [
    "Vrvirksomhed.cvrNummer",
    "Vrvirksomhed.virksomhedMetadata",
    "Vrvirksomhed.livsforloeb",
]


class DkCvr(http.HttpRegister):
    """The CVR adapter (one per process). Needs the system-to-system user and password."""

    source = "dk_cvr"
    title = "Det Centrale Virksomhedsregister (CVR)"

    def __init__(
        self,
        base_url: str,
        *,
        username: str,
        password: str,
        session: requests.Session,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 8.0,
    ) -> None:
        super().__init__(base_url, session=session, connect_timeout_s=connect_timeout_s,
                         read_timeout_s=read_timeout_s, auth=(username, password))

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        http.sendable(number=number)
        if not (number.isascii() and number.isdigit()):
            raise NotSent("A CVR number is digits only.", {"number": "Must be digits only."})
        query = {
            "query": {"term": {"Vrvirksomhed.cvrNummer": int(number)}},
            "_source": SOURCE_FIELDS,
            "size": 1,
        }
        response = self.call("POST", "/cvr-permanent/virksomhed/_search", timeout_s=timeout_s,
                             json=query)
        if response.status_code != 200:
            return None
        return parse(json_of(response, self.title), number)


def _current(periods: list[dict[str, Any]]) -> dict[str, Any] | None:
    return periods[-1] if periods else None


def parse(document: Any, cvr: str) -> RegisterRecord | None:
    """A record from an Elasticsearch answer, or None when it has no hit."""
    try:
        hits = document["hits"]["hits"]
        if not hits:
            return None
        company = hits[0]["_source"]["Vrvirksomhed"]
        meta = company.get("virksomhedMetadata") or {}
        raw = meta.get("sammensatStatus")
        life = _current(company.get("livsforloeb") or []) or {}
        ended = ((life.get("periode") or {}).get("gyldigTil")) or None
        if raw:
            active = "".join(str(raw).split()).upper() in ACTIVE_STATUSES
        else:
            active = ended is None
        name = (meta.get("nyesteNavn") or {}).get("navn")
        form = meta.get("nyesteVirksomhedsform") or {}
        place = meta.get("nyesteBeliggenhedsadresse") or {}
        street = " ".join(str(p) for p in (place.get("vejnavn"), place.get("husnummerFra"),
                                           place.get("bogstavFra")) if p)
        return RegisterRecord(
            status=ACTIVE if active else INACTIVE,
            status_raw=str(raw) if raw else ("ophørt" if ended else "aktiv"),
            registered_name=name,
            legal_form=" ".join(p for p in (form.get("kortBeskrivelse"),
                                            f"({form['langBeskrivelse']})"
                                            if form.get("langBeskrivelse") else None) if p)
            or None,
            address=http.join_address(
                street, place.get("conavn"),
                " ".join(str(p) for p in (place.get("postnummer"), place.get("postdistrikt"))
                         if p),
                place.get("landekode"),
            ),
            address_parts=http.address_parts(
                street=street, postcode=place.get("postnummer"),
                city=place.get("postdistrikt"), country=place.get("landekode")),
            country="DK",
            ceased_on=ended,
            url=RECORD_URL.format(cvr=cvr),
        )
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        raise UpstreamError(f"CVR answer has an unexpected shape: {e!r}",
                            Fault.BAD_RESPONSE) from e
