"""Norway, Brønnøysund Enhetsregisteret: ``GET {base}/enheter/{orgnr}`` (no key).

The register has no single status field; the adapter reads, in order: ``slettedato`` (deleted,
still answered with 200), ``konkurs`` (bankrupt), ``underTvangsavviklingEllerTvangsopplosning``
(forced liquidation or dissolution), ``underAvvikling`` (under liquidation); none of them:
active. ``status_raw`` says which, in English; ``status_detail`` names the register's field.
404 is an unknown number; 410 Gone is an entity removed from the open data for legal reasons,
reported ``inactive`` with ``status_raw`` ``deleted``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from services.registry.registers import (
    ACTIVE,
    INACTIVE,
    Found,
    RegisterRecord,
    http,
)
from shared.upstream import Fault, UpstreamError, json_of

RECORD_URL = "https://virksomhet.brreg.no/nb/oppslag/enheter/{orgnr}"

#: Boolean fields that make an entity inactive, with the status they mean.
FLAGS = (
    ("konkurs", "bankrupt"),
    ("underTvangsavviklingEllerTvangsopplosning", "forced liquidation"),
    ("underAvvikling", "under liquidation"),
)


class NoBrreg(http.HttpRegister):
    """The Enhetsregisteret adapter (one per process)."""

    source = "no_brreg"
    title = "Brønnøysundregistrene, Enhetsregisteret"

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        orgnr = number[:9]  # an MVA number is the orgnr followed by "MVA"
        response = self.call("GET", f"/enheter/{http.segment(orgnr)}", timeout_s=timeout_s)
        if response.status_code == 404:
            return None
        url = RECORD_URL.format(orgnr=orgnr)
        if response.status_code == 410:
            return RegisterRecord(
                status=INACTIVE, status_raw="deleted", registered_name=None, url=url,
                country="NO", status_detail="410 Gone: removed from the register's open data",
            )
        document = json_of(response, self.title)
        record = parse(document, orgnr)
        if kind == "mva" and record.status == ACTIVE and not document.get(
            "registrertIMvaregisteret"
        ):
            # The entity exists, but the number is not a VAT registration: say so.
            return dataclasses.replace(
                record, status_detail="not registered in Merverdiavgiftsregisteret"
            )
        return record


def parse(document: Any, orgnr: str) -> RegisterRecord:
    """A record from an ``enheter`` document."""
    try:
        status: Found
        status, raw, detail = ACTIVE, "active", None
        if document.get("slettedato"):
            status, raw, detail = INACTIVE, "deleted", f"slettedato {document['slettedato']}"
        else:
            for field, meaning in FLAGS:
                if document.get(field):
                    status, raw, detail = INACTIVE, meaning, field
                    break
        form = document.get("organisasjonsform") or {}
        address = document.get("forretningsadresse") or document.get("postadresse") or {}
        return RegisterRecord(
            status=status,
            status_raw=raw,
            status_detail=detail,
            registered_name=document.get("navn"),
            legal_form=" ".join(
                p for p in (form.get("kode"), f"({form['beskrivelse']})"
                            if form.get("beskrivelse") else None) if p
            ) or None,
            address=http.join_address(
                *(address.get("adresse") or []),
                " ".join(p for p in (address.get("postnummer"), address.get("poststed")) if p),
                address.get("land"),
            ),
            address_parts=http.address_parts(
                street=", ".join(str(p) for p in address.get("adresse") or [] if p),
                postcode=address.get("postnummer"), city=address.get("poststed"),
                country=address.get("landkode") or address.get("land")),
            country="NO",
            ceased_on=document.get("slettedato"),
            url=RECORD_URL.format(orgnr=orgnr),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"Enhetsregisteret answer has an unexpected shape: {e!r}",
                            Fault.BAD_RESPONSE) from e
