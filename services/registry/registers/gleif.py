"""GLEIF, the Global LEI Index: ``GET {base}/lei-records/{lei}`` (JSON:API, no key).

The record carries two statuses: the entity's (``ACTIVE``/``INACTIVE``: does the legal entity
still exist) and the LEI registration's (``ISSUED``, ``LAPSED`` when not renewed, ``RETIRED``,
``MERGED``, ``ANNULLED``, ...). A LEI is ``active`` only when the entity is ``ACTIVE`` and the
registration is current (:data:`CURRENT`); ``status_raw`` is ``REGISTRATION/ENTITY``, e.g.
``LAPSED/ACTIVE``. 404 means no such LEI.
"""

from __future__ import annotations

from typing import Any

from services.registry.registers import (
    ACTIVE,
    INACTIVE,
    RegisterRecord,
    http,
)
from shared.upstream import Fault, UpstreamError, json_of

#: Registration statuses of a LEI that is maintained (GLEIF's state transition rules).
CURRENT = frozenset({"ISSUED", "PENDING_TRANSFER", "PENDING_ARCHIVAL"})
RECORD_URL = "https://search.gleif.org/#/record/{lei}"


class Gleif(http.HttpRegister):
    """The GLEIF API adapter (one per process; thread-safe through its session)."""

    source = "gleif"
    title = "GLEIF Global LEI Index"

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        response = self.call("GET", f"/lei-records/{http.segment(number)}", timeout_s=timeout_s,
                             headers={"Accept": "application/vnd.api+json"})
        if response.status_code != 200:
            return None  # 404: no such LEI (GLEIF never answers 410)
        return parse(json_of(response, self.title), number)


def parse(document: Any, lei: str) -> RegisterRecord:
    """A record from GLEIF's ``lei-records`` document."""
    try:
        attributes = document["data"]["attributes"]
        entity = attributes["entity"]
        registration = attributes["registration"]
        entity_status = str(entity.get("status") or "")
        registration_status = str(registration.get("status") or "")
        address = entity.get("legalAddress") or {}
        expiration = entity.get("expiration") or {}
        active = entity_status == "ACTIVE" and registration_status in CURRENT
        detail = None
        if entity_status == "ACTIVE" and registration_status not in CURRENT:
            detail = f"the LEI is {registration_status.lower()}; the entity is still active"
        return RegisterRecord(
            status=ACTIVE if active else INACTIVE,
            status_raw=f"{registration_status}/{entity_status}",
            status_detail=detail or (expiration.get("reason") or None),
            registered_name=(entity.get("legalName") or {}).get("name"),
            legal_form=(entity.get("legalForm") or {}).get("id"),
            address=http.join_address(
                *(address.get("addressLines") or []),
                " ".join(p for p in (address.get("postalCode"), address.get("city")) if p),
                address.get("country"),
            ),
            address_parts=http.address_parts(
                street=", ".join(str(p) for p in address.get("addressLines") or [] if p),
                postcode=address.get("postalCode"), city=address.get("city"),
                country=address.get("country")),
            country=entity.get("jurisdiction") or address.get("country"),
            ceased_on=(expiration.get("date") or "")[:10] or None,
            registered_as=entity.get("registeredAs"),
            url=RECORD_URL.format(lei=lei),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"GLEIF record has an unexpected shape: {e!r}",
                            Fault.BAD_RESPONSE) from e
