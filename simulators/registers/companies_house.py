"""UK Companies House public data API, ``GET /companies-house/company/{company_number}``.

Authentication is HTTP Basic with the API key as user name and an empty password, as Companies
House does; a missing or wrong key is 401 ``{"error": "Invalid Authorization", "type":
"ch:service"}``. Demo companies (``data/companies_house.json``) are rendered as company
profiles (``company_name``, ``company_number``, ``company_status`` and
``company_status_detail``, ``type``, ``registered_office_address``, ``date_of_cessation``,
``links``...). An unknown number is 404 ``company-profile-not-found``.
"""

from __future__ import annotations

import hashlib
from typing import Any

from flask import Blueprint, Response, jsonify

from .routes import basic_auth, state

SOURCE = "companies_house"
PREFIX = "/companies-house"

bp = Blueprint("registers_simulator_companies_house", __name__, url_prefix=PREFIX)


def render(r: dict[str, Any]) -> dict[str, Any]:
    """A demo company as a company profile."""
    number = r["company_number"]
    profile = {
        "can_file": r["company_status"] == "active",
        "company_name": r["company_name"],
        "company_number": number,
        "company_status": r["company_status"],
        "date_of_creation": r.get("date_of_creation"),
        "etag": hashlib.sha256(number.encode()).hexdigest()[:40],
        "has_insolvency_history": bool(r.get("has_insolvency_history")),
        "jurisdiction": r.get("jurisdiction", "england-wales"),
        "links": {"self": f"/company/{number}",
                  "filing_history": f"/company/{number}/filing-history",
                  "officers": f"/company/{number}/officers"},
        "registered_office_address": r.get("registered_office_address", {}),
        "sic_codes": r.get("sic_codes", []),
        "type": r["type"],
    }
    for key in ("company_status_detail", "date_of_cessation"):
        if r.get(key):
            profile[key] = r[key]
    return profile


@bp.get("/company/<number>")
def company(number: str) -> Response | tuple[Response, int]:
    """One company profile: 200, 401 or 404."""
    credentials = basic_auth()
    if credentials is None or credentials != (state().credentials["companies_house_api_key"], ""):
        response = jsonify(error="Invalid Authorization", type="ch:service")
        response.headers["WWW-Authenticate"] = 'Basic realm="CH API"'
        return response, 401
    record = state().records[SOURCE].get(number.upper())
    if record is None:
        return jsonify(errors=[{"error": "company-profile-not-found", "type": "ch:service"}]), 404
    return jsonify(render(record))
