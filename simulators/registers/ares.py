"""Czech Republic, ARES, ``GET /ares/ekonomicke-subjekty-v-be/rest/ekonomicke-subjekty/{ico}``.

Demo subjects (``data/ares.json``) are rendered in the shape of the real API's
``EkonomickySubjekt``: ``ico``, ``obchodniJmeno``, ``sidlo`` (RÚIAN address parts and
``textovaAdresa``), ``pravniForma`` (a code), ``financniUrad``, ``datumVzniku``, ``datumZaniku``,
``datumAktualizace``, ``dic``, ``icoId``, ``seznamRegistraci`` (``stavZdroje*`` of every source:
``AKTIVNI``, ``ZANIKLY``, ``HISTORICKY``, ``NEEXISTUJICI``), ``primarniZdroj``, ``czNace``. An
unknown IČO is 404 ``{"kod": "NENALEZENO", ...}``; an IČO that is not 8 digits is 400
``{"kod": "CHYBA_VSTUPU", ...}``, as ARES answers.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import Blueprint, Response, jsonify

from .routes import state

SOURCE = "ares"
PREFIX = "/ares"

bp = Blueprint("registers_simulator_ares", __name__, url_prefix=PREFIX)

#: Every source ``seznamRegistraci`` reports on, in the API's order.
REGISTRATIONS = ("Ros", "Vr", "Res", "Rzp", "Nrpzs", "Rpsh", "Rcns", "Szr", "Dph", "SkDph",
                 "Sd", "Ir", "Ceu", "Rs", "Red", "Monitor")


def render(r: dict[str, Any]) -> dict[str, Any]:
    """A demo subject as the API's ``ekonomicke-subjekty/{ico}`` document."""
    a = r.get("address", {})
    states = r.get("states", {})
    number = "/".join(str(p) for p in (a.get("building"), a.get("number")) if p)
    seat = {
        "kodStatu": "CZ",
        "nazevStatu": "Česká republika",
        "nazevObce": a.get("town"),
        "nazevCastiObce": a.get("district"),
        "nazevUlice": a.get("street"),
        "cisloDomovni": a.get("building"),
        "cisloOrientacni": a.get("number"),
        "psc": a.get("postal_code"),
        "textovaAdresa": ", ".join(p for p in (
            " ".join(p for p in (a.get("street"), number) if p), a.get("district"),
            " ".join(str(p) for p in (a.get("postal_code"), a.get("town")) if p),
        ) if p),
        "standardizaceAdresy": True,
    }
    document: dict[str, Any] = {
        "ico": r["ico"],
        "obchodniJmeno": r["name"],
        "sidlo": {k: v for k, v in seat.items() if v is not None},
        "pravniForma": r["form"],
        "financniUrad": r.get("tax_office", "451"),
        "datumVzniku": r.get("founded"),
        "datumZaniku": r.get("ceased"),
        "datumAktualizace": r.get("updated", date.today().isoformat()),
        "dic": r.get("dic"),
        "icoId": r["ico"],
        "adresaDorucovaci": {},
        "seznamRegistraci": {f"stavZdroje{s}": states.get(s.lower(), "NEEXISTUJICI")
                             for s in REGISTRATIONS},
        "primarniZdroj": r.get("primary", "ros"),
        "czNace": r.get("nace", []),
    }
    return {k: v for k, v in document.items() if v is not None}


def _error(status: int, code: str, description: str, sub_code: str) -> tuple[Response, int]:
    return jsonify(kod=code, popis=description, subKod=sub_code), status


@bp.get("/ekonomicke-subjekty-v-be/rest/ekonomicke-subjekty/<ico>")
def subject(ico: str) -> Response | tuple[Response, int]:
    """One economic subject: 200, 404 or 400."""
    if not (ico.isdigit() and len(ico) == 8):
        return _error(400, "CHYBA_VSTUPU", f"Chybně zadané IČO: {ico}.",
                      "VSTUP_NEVALIDNI_FORMAT_ICO")
    record = state().records[SOURCE].get(ico)
    if record is None:
        return _error(404, "NENALEZENO", "Ekonomický subjekt nebyl nalezen.",
                      "VYSTUP_SUBJEKT_NENALEZEN")
    return jsonify(render(record))
