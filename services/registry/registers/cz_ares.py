"""Czech Republic, ARES (Administrativní registr ekonomických subjektů, Ministry of Finance):
``GET {base}/ekonomicke-subjekty/{ico}`` (no key).

ARES gathers what the Czech registers know of an IČO (the registr osob ROS, the public
registers VR, the statistical register RES, the trade register RŽP...). The answer (OpenAPI at
https://ares.gov.cz/swagger-ui/, schema ``EkonomickySubjekt``) carries ``obchodniJmeno``,
``sidlo`` (with ``textovaAdresa``), ``pravniForma`` (a code of the ``PravniForma`` list),
``datumVzniku``, ``datumZaniku`` and ``seznamRegistraci``: the entity's state in each source,
``stavZdrojeRos``, ``stavZdrojeVr``, ``stavZdrojeRes``... each ``AKTIVNI``, ``ZANIKLY``,
``HISTORICKY`` or ``NEEXISTUJICI`` (never registered there); ``primarniZdroj`` names the source
ARES took the record from. An unknown IČO is 404 ``{"kod": "NENALEZENO", "subKod":
"VYSTUP_SUBJEKT_NENALEZEN"}``; a malformed one 400 ``CHYBA_VSTUPU``.

Status: ``status_raw`` is the state in the registr osob (``stavZdrojeRos``), or, without it, in
the primary source. A ``datumZaniku`` (``ceased_on``) or a state in :data:`CEASED` is
``inactive``; anything else ``active``. An active entity in the insolvency register
(``stavZdrojeIr`` ``AKTIVNI``) stays active with a ``status_detail`` saying so.
"""

from __future__ import annotations

from typing import Any

from services.registry.registers import (
    ACTIVE,
    INACTIVE,
    Found,
    RegisterRecord,
    http,
)
from shared.upstream import Fault, UpstreamError, json_of

RECORD_URL = "https://ares.gov.cz/ekonomicke-subjekty?ico={ico}"
#: Source states of an entity that no longer exists there.
CEASED = frozenset({"ZANIKLY", "HISTORICKY"})

#: Common codes of the ``PravniForma`` code list, for a readable legal form.
FORMS: dict[str, str] = {
    "101": "Fyzická osoba podnikající dle živnostenského zákona",
    "111": "Veřejná obchodní společnost",
    "112": "Společnost s ručením omezeným",
    "113": "Společnost komanditní",
    "117": "Nadace",
    "118": "Nadační fond",
    "121": "Akciová společnost",
    "141": "Obecně prospěšná společnost",
    "145": "Společenství vlastníků jednotek",
    "205": "Družstvo",
    "301": "Státní podnik",
    "325": "Organizační složka státu",
    "331": "Příspěvková organizace",
    "706": "Spolek",
    "736": "Pobočný spolek",
    "801": "Obec",
}


class CzAres(http.HttpRegister):
    """The ARES adapter (one per process)."""

    source = "cz_ares"
    title = "ARES (Administrativní registr ekonomických subjektů)"

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        response = self.call("GET", f"/ekonomicke-subjekty/{http.segment(number)}",
                             timeout_s=timeout_s)
        if response.status_code != 200:  # 404 NENALEZENO
            return None
        return parse(json_of(response, self.title), number)


def legal_form(code: Any) -> str | None:
    """The code with its name where it is a common one.

    >>> legal_form("112"), legal_form("999"), legal_form(None)
    ('112 Společnost s ručením omezeným', '999', None)
    """
    if not code:
        return None
    label = FORMS.get(str(code))
    return f"{code} {label}" if label else str(code)


def _address(place: dict[str, Any]) -> str | None:
    if place.get("textovaAdresa"):
        return str(place["textovaAdresa"])
    parts = _address_parts(place) or {}
    town = " ".join(p for p in (parts.get("postcode"), parts.get("city")) if p)
    return http.join_address(parts.get("street"), town, place.get("nazevStatu"))


def _address_parts(place: dict[str, Any]) -> dict[str, str] | None:
    number = "/".join(str(p) for p in (place.get("cisloDomovni"), place.get("cisloOrientacni"))
                      if p)
    street = " ".join(p for p in (place.get("nazevUlice") or place.get("nazevCastiObce"),
                                  number) if p)
    return http.address_parts(street=street, postcode=place.get("psc"),
                              city=place.get("nazevObce"), country=place.get("nazevStatu"))


def parse(document: Any, ico: str) -> RegisterRecord:
    """A record from an ``ekonomicke-subjekty/{ico}`` answer."""
    try:
        states = document.get("seznamRegistraci") or {}
        primary = str(document.get("primarniZdroj") or "").lower()
        field = "stavZdrojeRos" if states.get("stavZdrojeRos") else (
            f"stavZdroje{primary.capitalize()}")
        state = states.get(field)
        ceased_on = document.get("datumZaniku") or None
        status: Found
        status, detail = ACTIVE, None
        if ceased_on:
            status, detail = INACTIVE, f"datumZaniku {ceased_on}"
        elif state in CEASED:
            status, detail = INACTIVE, field
        elif states.get("stavZdrojeIr") == "AKTIVNI":
            detail = "in the insolvency register (stavZdrojeIr AKTIVNI)"
        return RegisterRecord(
            status=status,
            status_raw=str(state) if state else ("ZANIKLY" if ceased_on else "AKTIVNI"),
            status_detail=detail,
            registered_name=document.get("obchodniJmeno"),
            legal_form=legal_form(document.get("pravniForma")),
            address=_address(document.get("sidlo") or {}),
            address_parts=_address_parts(document.get("sidlo") or {}),
            country="CZ",
            ceased_on=ceased_on,
            url=RECORD_URL.format(ico=ico),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"ARES answer has an unexpected shape: {e!r}",
                            Fault.BAD_RESPONSE) from e
