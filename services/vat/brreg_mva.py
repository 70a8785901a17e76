"""Norway: whether an organisation number is in the VAT register (Merverdiavgiftsregisteret).

A Norwegian VAT number is the organisation number followed by ``MVA``. Brønnøysund's
Enhetsregisteret answers ``GET {base}/enheter/{orgnr}`` (no key) with the entity, whose
``registrertIMvaregisteret`` says whether it is VAT-registered. The registry service reads the
same register for 30(1)(d) (``services/registry/registers/no_brreg.py``); this adapter is the
VAT service's own, with its own rate limit and breaker.

Fault table (HTTP status → meaning):

==================  ============================================================
200, in the MVA     ``valid``, with ``navn`` and ``forretningsadresse``
200, not in it      ``invalid`` (the entity exists but is not VAT-registered)
200 ``slettedato``  ``invalid`` (the entity was deleted)
404                 ``invalid`` (no entity with that number)
410                 ``invalid`` (removed from the open data for legal reasons)
400                 ``invalid`` (the register refused the number)
429                 throttle (``Retry-After``): ``unavailable``, retryable
5xx, other          outage: ``unavailable``, retryable
timeout, no answer  outage: ``unavailable``, retryable
==================  ============================================================
"""

from __future__ import annotations

from typing import Any

import requests

from services.vat.sources import HTTP_FAULTS, SourceAnswer, join_lines, new_session
from shared.upstream import Fault, UpstreamError, json_of, send

TITLE = "Brønnøysundregistrene"


class BrregMva:
    """The Merverdiavgiftsregisteret adapter (one per process)."""

    name = "brreg"

    def __init__(self, base_url: str, *, connect_timeout_s: float = 3.0,
                 read_timeout_s: float = 8.0, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.session = session or new_session()

    def ready(self) -> None:
        """Nothing to prepare: the register needs no key."""

    def check(self, number: str, *, requester: str | None = None,
              timeout_s: float | None = None) -> SourceAnswer:
        """See :meth:`services.vat.sources.VatSource.check` (``number``: the 9-digit orgnr)."""
        read = min(self.read_timeout_s, timeout_s) if timeout_s else self.read_timeout_s
        response = send(self.session, "GET", f"{self.base_url}/enheter/{number}", title=TITLE,
                        timeout=(min(self.connect_timeout_s, read), read))
        status = response.status_code
        if status == 404:
            return SourceAnswer(False, detail="The Brønnøysund register has no entity with "
                                "that organisation number.")
        if status == 410:
            return SourceAnswer(False, detail="The entity was removed from the Brønnøysund "
                                "register's open data.")
        if status == 400:
            return SourceAnswer(False, detail="The Brønnøysund register refused the number.")
        if status != 200:
            raise HTTP_FAULTS.fault(response, TITLE)
        return parse(json_of(response, TITLE))


def parse(document: Any) -> SourceAnswer:
    """A :class:`SourceAnswer` from an ``enheter/{orgnr}`` document.

    >>> parse({"navn": "NORDISK FISK AS", "registrertIMvaregisteret": True,
    ...        "forretningsadresse": {"adresse": ["Bryggen 5"], "postnummer": "5003",
    ...                               "poststed": "BERGEN", "land": "Norge"}}).address
    'Bryggen 5\\n5003 BERGEN\\nNorge'
    >>> parse({"navn": "X AS", "registrertIMvaregisteret": False}).valid
    False
    """
    try:
        name = document.get("navn")
        if document.get("slettedato"):
            return SourceAnswer(False, name=name, detail="The entity was deleted from the "
                                f"register on {document['slettedato']}.")
        registered = document["registrertIMvaregisteret"]
        if not isinstance(registered, bool):
            raise TypeError("registrertIMvaregisteret")
        address = document.get("forretningsadresse") or document.get("postadresse") or {}
        text = join_lines(
            *(address.get("adresse") or []),
            " ".join(p for p in (address.get("postnummer"), address.get("poststed")) if p),
            address.get("land"),
        )
        if not registered:
            return SourceAnswer(False, name=name, address=text,
                                detail="The entity is not registered in the VAT register "
                                "(Merverdiavgiftsregisteret).")
        return SourceAnswer(True, name=name, address=text)
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"{TITLE} answer has an unexpected shape: {type(e).__name__}",
                            Fault.BAD_RESPONSE) from e
