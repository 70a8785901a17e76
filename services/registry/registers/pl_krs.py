"""Poland, KRS (Krajowy Rejestr Sądowy), the Ministry of Justice's open API (no key):
``GET {base}/OdpisAktualny/{krs}?rejestr=P&format=json``, then ``rejestr=S``.

The KRS has two registers a number can be in: P (przedsiębiorcy: companies, partnerships,
cooperatives) and S (stowarzyszenia: associations, foundations...). The adapter asks P and, on
404, S; 404 from both is ``not_found``. The current extract (``odpis``) has ``naglowekA`` (the
header: ``rejestr`` RejP/RejS, ``numerKRS``, ``stanZDnia``, ``stanPozycji``...) and ``dane``:
``dzial1.danePodmiotu`` (``nazwa``, ``formaPrawna``, ``identyfikatory``),
``dzial1.siedzibaIAdres`` (``adres``: ``ulica``, ``nrDomu``, ``nrLokalu``, ``kodPocztowy``,
``miejscowosc``, ``kraj``) and ``dzial6`` (liquidation, dissolution, bankruptcy). Dates are
``DD.MM.YYYY``; ``ceased_on`` is given as ISO.

The register has no status field; the adapter reads, in order:

- a deleted entity (wykreślony): the API answers ``OdpisAktualny`` with 204 No Content (no
  current extract exists). The adapter then reads the full extract (``OdpisPelny``), whose last
  entry (``naglowekP.wpis``) ``WYKREŚLENIE Z KRAJOWEGO REJESTRU SĄDOWEGO`` dates the deletion;
  that second call failing does not hide the deletion. A current extract whose header names a
  deletion date (``dataWykreslenia``, ``dataWykresleniaZRejestru``) or whose ``stanPozycji`` is
  2 (the full extract's mark of a deleted entity) is read the same way;
- ``dzial6.postepowanieUpadlosciowe`` (bankruptcy), ``dzial6.likwidacja`` (liquidation),
  ``dzial6.rozwiazanieUniewaznienie`` (dissolution or annulment), when not empty;
- none of them: active.

``status_raw`` says which in English (``deleted``, ``bankruptcy``, ``liquidation``,
``dissolved``, ``active``); ``status_detail`` names the register's field. The record's ``url``
is the extract at the API itself (JSON, public, no key): the KRS search site has no stable
address per entity.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import requests

from services.registry.registers import (
    ACTIVE,
    INACTIVE,
    Found,
    RegisterRecord,
    http,
)
from shared.upstream import Fault, UpstreamError, json_of

PUBLIC_URL = "https://api-krs.ms.gov.pl/api/krs/{extract}/{krs}?rejestr={register}&format=json"

log = logging.getLogger(__name__)

#: The registers a number is looked for in, in order.
REGISTERS = ("P", "S")
#: Statuses the adapter reads itself: 204 is a deleted entity's current extract.
ANSWERS = http.ANSWERS | {204}
#: Non-empty ``dzial6`` sections that make an entity inactive, with the status they mean.
SECTIONS = (
    ("postepowanieUpadlosciowe", "bankruptcy"),
    ("likwidacja", "liquidation"),
    ("rozwiazanieUniewaznienie", "dissolved"),
)
#: Header fields that date a deletion, should the current extract carry one.
DELETION_DATES = ("dataWykreslenia", "dataWykresleniaZRejestru")
#: ``stanPozycji`` of a deleted entity.
DELETED_POSITION = 2
#: How the full extract describes the entry that deletes an entity.
DELETION_ENTRY = "WYKREŚLENIE"


class PlKrs(http.HttpRegister):
    """The KRS adapter (one per process)."""

    source = "pl_krs"
    title = "Krajowy Rejestr Sądowy (API KRS, Ministerstwo Sprawiedliwości)"

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        end = None if timeout_s is None else time.monotonic() + timeout_s
        for register in REGISTERS:
            response = self._get("OdpisAktualny", number, register, end)
            if response.status_code == 204:
                return self._deleted(number, register, end)
            if response.status_code == 200:
                return parse(json_of(response, self.title), number, register)
        return None  # 404 (or 410) from both registers

    def _get(self, extract: str, number: str, register: str,
             end: float | None) -> requests.Response:
        left = None if end is None else end - time.monotonic()
        return self.call("GET", f"/{extract}/{http.segment(number)}", timeout_s=left,
                         answers=ANSWERS, params={"rejestr": register, "format": "json"})

    def _deleted(self, number: str, register: str, end: float | None) -> RegisterRecord:
        """The record of an entity deleted from ``register``, dated from its full extract."""
        record = RegisterRecord(
            status=INACTIVE, status_raw="deleted", registered_name=None, country="PL",
            status_detail="OdpisAktualny 204: no current extract (deleted from the KRS)",
            url=public_url("OdpisPelny", number, register),
        )
        try:
            response = self._get("OdpisPelny", number, register, end)
            if response.status_code != 200:
                return record
            return parse_full(json_of(response, self.title), record)
        except UpstreamError as e:
            # The deletion is known from the 204; only its date and the name are missing.
            log.warning("KRS full extract of a deleted entity unavailable: answered without "
                        "its deletion date", extra={"error": e.code})
            return record


def public_url(extract: str, krs: str, register: str) -> str:
    """The extract's address at the API, for a person to open.

    >>> public_url("OdpisAktualny", "0000019193", "P")
    'https://api-krs.ms.gov.pl/api/krs/OdpisAktualny/0000019193?rejestr=P&format=json'
    """
    return PUBLIC_URL.format(extract=extract, krs=krs, register=register)


def iso_date(value: Any) -> str | None:
    """A KRS date (``DD.MM.YYYY``) as ISO; anything else as it is.

    >>> iso_date("12.08.2022"), iso_date("2022-08-12"), iso_date(None)
    ('2022-08-12', '2022-08-12', None)
    """
    if not value:
        return None
    parts = str(value).strip().split(".")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        day, month, year = parts
        return f"{year}-{month.zfill(2)}-{day.zfill(2)}"
    return str(value)


def _address(seat: dict[str, Any]) -> str | None:
    a = seat.get("adres") or {}
    parts = _address_parts(seat) or {}
    town = " ".join(p for p in (parts.get("postcode"), parts.get("city")) if p)
    return http.join_address(parts.get("street"), town, a.get("kraj"))


def _address_parts(seat: dict[str, Any]) -> dict[str, str] | None:
    a = seat.get("adres") or {}
    house = "/".join(str(p) for p in (a.get("nrDomu"), a.get("nrLokalu")) if p)
    street = " ".join(str(p) for p in (a.get("ulica") or a.get("miejscowosc"), house) if p)
    return http.address_parts(street=street, postcode=a.get("kodPocztowy"),
                              city=a.get("poczta") or a.get("miejscowosc"), country=a.get("kraj"))


def parse(document: Any, krs: str, register: str) -> RegisterRecord:
    """A record from an ``OdpisAktualny`` answer."""
    try:
        extract = document["odpis"]
        header = extract.get("naglowekA") or {}
        data = extract.get("dane") or {}
        section1 = data.get("dzial1") or {}
        entity = section1.get("danePodmiotu") or {}
        section6 = data.get("dzial6") or {}
        status: Found
        status, raw, detail, ceased_on = ACTIVE, "active", None, None
        deleted_on = next((f for f in DELETION_DATES if header.get(f)), None)
        if deleted_on or header.get("stanPozycji") == DELETED_POSITION:
            status, raw = INACTIVE, "deleted"
            if deleted_on:
                ceased_on = iso_date(header[deleted_on])
                detail = f"naglowekA.{deleted_on} {header[deleted_on]}"
            else:
                detail = f"naglowekA.stanPozycji {DELETED_POSITION}"
        else:
            for field, meaning in SECTIONS:
                if section6.get(field):
                    status, raw, detail = INACTIVE, meaning, f"dzial6.{field}"
                    break
        return RegisterRecord(
            status=status,
            status_raw=raw,
            status_detail=detail,
            registered_name=entity.get("nazwa"),
            legal_form=entity.get("formaPrawna"),
            address=_address(section1.get("siedzibaIAdres") or {}),
            address_parts=_address_parts(section1.get("siedzibaIAdres") or {}),
            country="PL",
            ceased_on=ceased_on,
            url=public_url("OdpisAktualny", krs, register),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"KRS answer has an unexpected shape: {e!r}",
                            Fault.BAD_RESPONSE) from e


def _latest(value: Any, key: str) -> Any:
    """The current value of a full-extract field: a list of versions ``[{key: ...}]``, the
    last one current (or a plain value)."""
    if isinstance(value, list):
        return (value[-1] or {}).get(key) if value else None
    return value


def parse_full(document: Any, record: RegisterRecord) -> RegisterRecord:
    """``record`` (a deleted entity) with the name, form and deletion date of its
    ``OdpisPelny`` answer; ``record`` unchanged when the answer has an unexpected shape."""
    try:
        extract = document["odpis"]
        entries = (extract.get("naglowekP") or {}).get("wpis") or []
        deletion = next((e for e in reversed(entries)
                         if str(e.get("opis") or "").startswith(DELETION_ENTRY)), None)
        entity = ((extract.get("dane") or {}).get("dzial1") or {}).get("danePodmiotu") or {}
        return RegisterRecord(
            status=record.status,
            status_raw=record.status_raw,
            status_detail=(f"deleted from the KRS by entry {deletion.get('numerWpisu')} of "
                           f"{deletion.get('dataWpisu')}" if deletion else record.status_detail),
            registered_name=_latest(entity.get("nazwa"), "nazwa"),
            legal_form=_latest(entity.get("formaPrawna"), "formaPrawna"),
            country=record.country,
            ceased_on=iso_date(deletion.get("dataWpisu")) if deletion else None,
            url=record.url,
        )
    except (KeyError, TypeError, AttributeError, IndexError) as e:
        log.warning("KRS full extract has an unexpected shape: answered without its deletion "
                    "date", extra={"error": type(e).__name__})
        return record
