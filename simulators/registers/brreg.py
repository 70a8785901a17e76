"""Norway, Brønnøysund Enhetsregisteret, ``GET /brreg/enhetsregisteret/api/enheter/{orgnr}``.

Demo entities (``data/brreg.json``) are rendered in the real API's shape: ``navn``,
``organisasjonsform``, ``forretningsadresse``, ``registrertIMvaregisteret``, the booleans
``konkurs``, ``underAvvikling``, ``underTvangsavviklingEllerTvangsopplosning``, ``_links``. A
deleted entity is 200 with ``slettedato`` and few fields; an entity marked ``gone`` is 410 (removed
for legal reasons); an entity marked ``malformed`` answers 200 with truncated JSON (a client's
robustness test); an unknown number is 404; a number that is not 9 digits is 400.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .routes import state

SOURCE = "brreg"
PREFIX = "/brreg/enhetsregisteret/api"
PUBLIC = "https://data.brreg.no/enhetsregisteret/api"

bp = Blueprint("registers_simulator_brreg", __name__, url_prefix=PREFIX)


def _form(r: dict[str, Any]) -> dict[str, Any]:
    return {"kode": r["form"], "beskrivelse": r.get("form_text"),
            "_links": {"self": {"href": f"{PUBLIC}/organisasjonsformer/{r['form']}"}}}


def render(r: dict[str, Any]) -> dict[str, Any]:
    """A demo entity as the API's ``enheter/{orgnr}`` document."""
    orgnr = r["orgnr"]
    links = {"self": {"href": f"{PUBLIC}/enheter/{orgnr}"}}
    if r.get("slettedato"):
        return {"organisasjonsnummer": orgnr, "navn": r["name"], "organisasjonsform": _form(r),
                "slettedato": r["slettedato"], "_links": links}
    a = r.get("address", {})
    document: dict[str, Any] = {
        "organisasjonsnummer": orgnr,
        "navn": r["name"],
        "organisasjonsform": _form(r),
        "postadresse": None,
        "registreringsdatoEnhetsregisteret": r.get("registered"),
        "registrertIMvaregisteret": bool(r.get("vat_registered")),
        "naeringskode1": ({"kode": r["industry"][0], "beskrivelse": r["industry"][1]}
                          if r.get("industry") else None),
        "antallAnsatte": r.get("employees", 0),
        "harRegistrertAntallAnsatte": bool(r.get("employees")),
        "forretningsadresse": {
            "land": "Norge", "landkode": "NO", "postnummer": a.get("postal_code"),
            "poststed": a.get("city"), "adresse": a.get("lines", []),
            "kommune": a.get("municipality"), "kommunenummer": a.get("municipality_no"),
        },
        "institusjonellSektorkode": {"kode": "2100", "beskrivelse": "Private aksjeselskaper mv."},
        "registrertIForetaksregisteret": r["form"] != "ENK",
        "registrertIStiftelsesregisteret": False,
        "registrertIFrivillighetsregisteret": False,
        "konkurs": bool(r.get("konkurs")),
        "underAvvikling": bool(r.get("underAvvikling")),
        "underTvangsavviklingEllerTvangsopplosning": bool(
            r.get("underTvangsavviklingEllerTvangsopplosning")
        ),
        "maalform": "Bokmål",
        "registrertIPartiregisteret": False,
        "_links": links,
    }
    document = {k: v for k, v in document.items() if v is not None}
    for key in ("konkursdato", "underAvviklingDato"):
        if r.get(key):
            document[key] = r[key]
    return document


def _error(status: int, error: str, message: str) -> tuple[Response, int]:
    return jsonify(
        timestamp=datetime.now(UTC).isoformat(timespec="milliseconds"),
        status=status, error=error, message=message, path=request.path,
    ), status


@bp.get("/enheter/<orgnr>")
def entity(orgnr: str) -> Response | tuple[Response, int]:
    """One entity: 200, 404, 410 or 400."""
    if not (orgnr.isdigit() and len(orgnr) == 9):
        return _error(400, "Bad Request", f"Ugyldig organisasjonsnummer: {orgnr}")
    record = state().records[SOURCE].get(orgnr)
    if record is None:
        return _error(404, "Not Found", f"Ingen enhet med organisasjonsnummer {orgnr} ble funnet")
    if record.get("gone"):
        return _error(410, "Gone", f"Enhet med organisasjonsnummer {orgnr} er fjernet av "
                      "juridiske årsaker")
    if record.get("malformed"):
        return Response('{"organisasjonsnummer": "' + orgnr + '", "navn": ', status=200,
                        content_type="application/json")
    return jsonify(render(record))
