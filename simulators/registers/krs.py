"""Poland, API KRS, ``GET /krs/api/krs/OdpisAktualny/{krs}?rejestr=P|S&format=json`` and
``GET /krs/api/krs/OdpisPelny/{krs}?...`` (no key).

Demo entities (``data/krs.json``, each in register ``P`` or ``S``) are rendered as the real
API's extracts: ``{"odpis": {"rodzaj": "Aktualny", "naglowekA": {...}, "dane": {"dzial1":
{"danePodmiotu", "siedzibaIAdres", ...}, "dzial2"..."dzial6"}}}``, with ``dzial6`` holding
``likwidacja``, ``rozwiazanieUniewaznienie`` or ``postepowanieUpadlosciowe`` where the entity
has them. A number not in the register asked (``rejestr``) is 404 with an RFC 7807 body, as the
API answers; a deleted entity (``deleted``: the date of its deletion entry) has no current
extract: ``OdpisAktualny`` is 204 No Content, and ``OdpisPelny`` (``naglowekP`` with the entry
history, values in versioned lists) ends with the entry ``WYKREŚLENIE Z KRAJOWEGO REJESTRU
SĄDOWEGO`` and ``stanPozycji`` 2. A number that is not 10 digits, a ``rejestr`` other than P or
S, or a ``format`` other than ``json`` is 400.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .routes import state

SOURCE = "krs"
PREFIX = "/krs"

bp = Blueprint("registers_simulator_krs", __name__, url_prefix=PREFIX)

COURT = "SĄD REJONOWY DLA M. ST. WARSZAWY W WARSZAWIE, XII WYDZIAŁ GOSPODARCZY KRAJOWEGO " \
    "REJESTRU SĄDOWEGO"
NOT_FOUND_TYPE = "https://tools.ietf.org/html/rfc7231#section-6.5.4"
BAD_REQUEST_TYPE = "https://tools.ietf.org/html/rfc7231#section-6.5.1"


def _today() -> str:
    return datetime.now().strftime("%d.%m.%Y")


def _address(r: dict[str, Any]) -> dict[str, Any]:
    a = r.get("address", {})
    seat = {"kraj": "POLSKA", "wojewodztwo": a.get("voivodeship"), "powiat": a.get("county"),
            "gmina": a.get("town"), "miejscowosc": a.get("town")}
    address = {"ulica": a.get("street"), "nrDomu": a.get("house"), "nrLokalu": a.get("flat"),
               "miejscowosc": a.get("town"), "kodPocztowy": a.get("postal_code"),
               "poczta": a.get("town"), "kraj": "POLSKA"}
    return {"siedziba": {k: v for k, v in seat.items() if v is not None},
            "adres": {k: v for k, v in address.items() if v is not None}}


def _section6(r: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = {}
    if r.get("liquidation"):
        section["likwidacja"] = [{
            "otwarcieLikwidacji": f"UCHWAŁA WSPÓLNIKÓW Z DNIA {r['liquidation']}",
            "likwidatorzy": [{"nazwisko": {"nazwiskoICzlon": "K*******"},
                              "imiona": {"imie": "A****"},
                              "identyfikator": {"pesel": "7**********"}}],
        }]
    if r.get("dissolution"):
        section["rozwiazanieUniewaznienie"] = {
            "okreslenieOkolicznosci": f"ROZWIĄZANIE, {r['dissolution']}"}
    if r.get("bankruptcy"):
        section["postepowanieUpadlosciowe"] = [{
            "dataWszczeciaPostepowania": r["bankruptcy"],
            "sygnaturaAktSprawy": "WA1M/GU/123/24",
            "oznaczenieSadu": "SĄD REJONOWY DLA M. ST. WARSZAWY W WARSZAWIE",
            "sposobProwadzeniaPostepowania": "UPADŁOŚĆ",
        }]
    return section


def render(r: dict[str, Any]) -> dict[str, Any]:
    """A demo entity as the ``OdpisAktualny`` document."""
    entity: dict[str, Any] = {
        "formaPrawna": r["form"],
        "identyfikatory": {k: v for k, v in (("regon", r.get("regon")), ("nip", r.get("nip")))
                           if v},
        "nazwa": r["name"],
        "daneOWczesniejszejRejestracji": {},
        "czyProwadziDzialalnoscZInnymiPodmiotami": False,
        "czyPosiadaStatusOPP": bool(r.get("opp")),
    }
    return {"odpis": {
        "rodzaj": "Aktualny",
        "naglowekA": {
            "rejestr": f"Rej{r['register']}",
            "numerKRS": r["krs"],
            "dataCzasOdpisu": datetime.now().strftime("%d.%m.%Y %H:%M:%S"),
            "stanZDnia": _today(),
            "dataRejestracjiWKRS": r["registered"],
            "numerOstatniegoWpisu": r.get("entries", 3),
            "dataOstatniegoWpisu": r.get("last_entry", r["registered"]),
            "sygnaturaAktSprawyDotyczacejOstatniegoWpisu": "WA.XII NS-REJ.KRS/12345/24/123",
            "oznaczenieSaduDokonujacegoOstatniegoWpisu": COURT,
            "stanPozycji": 1,
        },
        "dane": {
            "dzial1": {"danePodmiotu": entity, "siedzibaIAdres": _address(r)},
            "dzial2": {},
            "dzial3": {},
            "dzial4": {},
            "dzial5": {},
            "dzial6": _section6(r),
        },
    }}


def render_full(r: dict[str, Any]) -> dict[str, Any]:
    """A demo entity as the ``OdpisPelny`` document (entry history, versioned values)."""
    entries = [{"numerWpisu": 1, "opis": "REJESTRACJA W KRAJOWYM REJESTRZE SĄDOWYM",
                "dataWpisu": r["registered"],
                "sygnaturaAktSprawyDotyczacejWpisu": "WA.XII NS-REJ.KRS/1/01/1",
                "oznaczenieSaduDokonujacegoWpisu": COURT}]
    if r.get("deleted"):
        entries.append({"numerWpisu": 2, "opis": "WYKREŚLENIE Z KRAJOWEGO REJESTRU SĄDOWEGO",
                        "dataWpisu": r["deleted"],
                        "sygnaturaAktSprawyDotyczacejWpisu": "WA.XII NS-REJ.KRS/9/22/9",
                        "oznaczenieSaduDokonujacegoWpisu": COURT,
                        "dataUprawomocnienia": r.get("deletion_final", r["deleted"])})
    return {"odpis": {
        "rodzaj": "Pełny",
        "naglowekP": {
            "rejestr": f"Rej{r['register']}",
            "numerKRS": r["krs"],
            "dataCzasOdpisu": datetime.now().strftime("%d.%m.%Y %H:%M:%S"),
            "stanZDnia": r.get("deleted") or _today(),
            "wpis": entries,
            "stanPozycji": 2 if r.get("deleted") else 1,
        },
        "dane": {"dzial1": {"danePodmiotu": {
            "formaPrawna": [{"formaPrawna": r["form"], "nrWpisuWprow": "1"}],
            "nazwa": [{"nazwa": r["name"], "nrWpisuWprow": "1"}],
        }}},
    }}


def _problem(status: int, kind: str, title: str) -> tuple[Response, int]:
    trace = hashlib.sha256(request.full_path.encode()).hexdigest()
    response = jsonify(type=kind, title=title, status=status,
                       traceId=f"00-{trace[:32]}-{trace[32:48]}-00")
    response.mimetype = "application/problem+json"
    return response, status


def _find(krs: str) -> dict[str, Any] | tuple[Response, int]:
    """The demo entity the request asks for, or the error answer."""
    register = request.args.get("rejestr")
    if not (krs.isdigit() and len(krs) == 10) or register not in (None, "P", "S") or (
        request.args.get("format", "json") != "json"
    ):
        return _problem(400, BAD_REQUEST_TYPE, "Bad Request")
    record = state().records[SOURCE].get(krs)
    if record is None or (register is not None and record["register"] != register):
        return _problem(404, NOT_FOUND_TYPE, "Not Found")
    return record


@bp.get("/api/krs/OdpisAktualny/<krs>")
def current(krs: str) -> Response | tuple[Response, int]:
    """The current extract: 200, 204 (deleted), 404 or 400."""
    found = _find(krs)
    if isinstance(found, tuple):
        return found
    if found.get("deleted"):
        return Response(status=204)
    return jsonify(render(found))


@bp.get("/api/krs/OdpisPelny/<krs>")
def full(krs: str) -> Response | tuple[Response, int]:
    """The full extract: 200, 404 or 400."""
    found = _find(krs)
    if isinstance(found, tuple):
        return found
    return jsonify(render_full(found))
