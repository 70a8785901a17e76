"""GLEIF LEI API, ``GET /gleif/api/v1/lei-records/{lei}`` (JSON:API, no key).

Demo records (``data/gleif.json``) are rendered in the shape of the real API's ``lei-records``
document: ``entity`` (legal name, addresses, ``registeredAt``/``registeredAs``, ``legalForm.id``
as an ISO 20275 ELF code, ``status`` ACTIVE/INACTIVE, ``expiration``) and ``registration``
(``status`` ISSUED, LAPSED, RETIRED, MERGED, ...). An unknown LEI is 404 with a JSON:API
``errors`` array, as GLEIF answers.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, json

from .routes import state

SOURCE = "gleif"
PREFIX = "/gleif/api/v1"
PUBLIC = "https://api.gleif.org/api/v1"
MEDIA_TYPE = "application/vnd.api+json"

bp = Blueprint("registers_simulator_gleif", __name__, url_prefix=PREFIX)


def _address(a: dict[str, Any], language: str) -> dict[str, Any]:
    return {
        "language": language, "addressLines": a.get("lines", []), "addressNumber": None,
        "addressNumberWithinBuilding": None, "mailRouting": None, "city": a.get("city"),
        "region": a.get("region"), "country": a.get("country"), "postalCode": a.get("postal_code"),
    }


def render(r: dict[str, Any]) -> dict[str, Any]:
    """A demo record as GLEIF's ``lei-records/{lei}`` document."""
    lei = r["lei"]
    language = r.get("language", "en")
    expiration = r.get("expiration") or {}
    successor = r.get("successor") or {}
    links = f"{PUBLIC}/lei-records/{lei}"
    return {
        "meta": {"goldenCopy": {"publishDate": "2026-01-01T00:00:00Z"}},
        "data": {
            "type": "lei-records",
            "id": lei,
            "attributes": {
                "lei": lei,
                "entity": {
                    "legalName": {"name": r["name"], "language": language},
                    "otherNames": [], "transliteratedOtherNames": [],
                    "legalAddress": _address(r["address"], language),
                    "headquartersAddress": _address(r["address"], language),
                    "registeredAt": {"id": r.get("registered_at"), "other": None},
                    "registeredAs": r.get("registered_as"),
                    "jurisdiction": r["jurisdiction"],
                    "category": r.get("category", "GENERAL"),
                    "legalForm": {"id": r.get("legal_form"), "other": None},
                    "associatedEntity": {"lei": None, "name": None},
                    "status": r["entity_status"],
                    "expiration": {"date": expiration.get("date"),
                                   "reason": expiration.get("reason")},
                    "successorEntity": {"lei": successor.get("lei"),
                                        "name": successor.get("name")},
                    "successorEntities": [successor] if successor else [],
                    "creationDate": r.get("created"),
                    "subCategory": None, "otherAddresses": [], "eventGroups": [],
                },
                "registration": {
                    "initialRegistrationDate": r.get("initial_registration"),
                    "lastUpdateDate": r.get("initial_registration"),
                    "status": r["registration_status"],
                    "nextRenewalDate": r.get("next_renewal"),
                    "managingLou": "5299000J2N45DDNE4Y28",
                    "corroborationLevel": "FULLY_CORROBORATED",
                    "validatedAt": {"id": r.get("registered_at"), "other": None},
                    "validatedAs": r.get("registered_as"),
                    "otherValidationAuthorities": [],
                },
                "bic": None, "mic": None, "ocid": None, "qcc": None, "spglobal": [],
                "conformityFlag": "CONFORMING",
            },
            "relationships": {
                "managing-lou": {"links": {"related": f"{links}/managing-lou"}},
                "lei-issuer": {"links": {"related": f"{links}/lei-issuer"}},
            },
            "links": {"self": links},
        },
    }


def _json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=MEDIA_TYPE)


@bp.get("/lei-records/<lei>")
def lei_record(lei: str) -> Response:
    """One LEI record, or 404."""
    record = state().records[SOURCE].get(lei.upper())
    if record is None:
        return _json({"errors": [{"status": "404", "title": "Not Found"}]}, 404)
    return _json(render(record))
