"""France, API Recherche d'entreprises, ``GET /recherche-entreprises/search?q=`` (no key).

``q`` is a SIREN (the legal unit), a SIRET (the unit, with that establishment in
``matching_etablissements``) or words of the name (case-insensitive). The answer has the real
API's shape: ``results`` (``siren``, ``nom_complet``, ``nom_raison_sociale``,
``etat_administratif`` A/C, ``date_fermeture``, ``nature_juridique``, ``siege`` with its own
``etat_administratif`` A/F, ``matching_etablissements``, ...), ``total_results``, ``page``,
``per_page``, ``total_pages``. Nothing found is 200 with no results, as the API answers; a
missing ``q`` or a bad ``page``/``per_page`` is 400 with ``erreur``.
"""

from __future__ import annotations

import math
from typing import Any

from flask import Blueprint, Response, jsonify, request

from .routes import state

SOURCE = "recherche_entreprises"
PREFIX = "/recherche-entreprises"

bp = Blueprint("registers_simulator_recherche", __name__, url_prefix=PREFIX)


def _establishment(unit: dict[str, Any], e: dict[str, Any]) -> dict[str, Any]:
    address = " ".join(
        str(p) for p in (e.get("number"), e.get("street_type"), e.get("street"),
                         e.get("postal_code"), e.get("city")) if p
    )
    return {
        "activite_principale": unit.get("activity"),
        "adresse": address,
        "caractere_employeur": "N",
        "code_postal": e.get("postal_code"),
        "commune": e.get("commune"),
        "date_creation": e.get("created"),
        "date_debut_activite": e.get("created"),
        "date_fermeture": e.get("closed"),
        "est_siege": bool(e.get("head_office")),
        "etat_administratif": e["state"],
        "libelle_commune": e.get("city"),
        "libelle_voie": e.get("street"),
        "numero_voie": e.get("number"),
        "siret": e["siret"],
        "statut_diffusion_etablissement": unit.get("diffusion", "O"),
        "type_voie": e.get("street_type"),
    }


def render(unit: dict[str, Any], siret: str | None = None) -> dict[str, Any]:
    """A demo legal unit as one of the API's ``results``."""
    places = unit.get("establishments", [])
    head = next((e for e in places if e.get("head_office")), places[0] if places else None)
    name = unit["name"] + (f" ({unit['sigle']})" if unit.get("sigle") else "")
    return {
        "siren": unit["siren"],
        "nom_complet": name,
        "nom_raison_sociale": unit["name"],
        "sigle": unit.get("sigle"),
        "nombre_etablissements": len(places),
        "nombre_etablissements_ouverts": sum(1 for e in places if e["state"] == "A"),
        "siege": _establishment(unit, head) if head else {},
        "activite_principale": unit.get("activity"),
        "categorie_entreprise": unit.get("category"),
        "date_creation": unit.get("created"),
        "date_fermeture": unit.get("closed"),
        "date_mise_a_jour": "2026-01-01T00:00:00",
        "dirigeants": [],
        "etat_administratif": unit["state"],
        "nature_juridique": unit.get("nature_juridique"),
        "section_activite_principale": None,
        "tranche_effectif_salarie": None,
        "statut_diffusion": unit.get("diffusion", "O"),
        "matching_etablissements": [
            _establishment(unit, e) for e in places if siret is not None and e["siret"] == siret
        ],
        "complements": {"est_entrepreneur_individuel": unit.get("nature_juridique") == "1000"},
    }


def _bad(message: str) -> tuple[Response, int]:
    return jsonify(erreur=message), 400


@bp.get("/search")
def search() -> Response | tuple[Response, int]:
    """Search legal units by SIREN, SIRET or name."""
    q = (request.args.get("q") or "").strip()
    if not q:
        return _bad("Veuillez indiquer au moins un paramètre de recherche.")
    try:
        page = int(request.args.get("page", 1))
        per_page = int(request.args.get("per_page", 10))
    except ValueError:
        return _bad("page et per_page doivent être des entiers.")
    if page < 1 or not 1 <= per_page <= 25:
        return _bad("per_page doit être entre 1 et 25.")
    units = state().records[SOURCE]
    compact = q.replace(" ", "")
    siret = None
    if compact.isdigit() and len(compact) == 14:
        siret = compact
        unit = units.get(compact[:9])
        found = [unit] if unit and any(e["siret"] == siret for e in unit["establishments"]) else []
    elif compact.isdigit() and len(compact) == 9:
        found = [units[compact]] if compact in units else []
    else:
        words = q.lower().split()
        found = [u for u in units.values() if all(w in u["name"].lower() for w in words)]
    start = (page - 1) * per_page
    return jsonify(
        results=[render(u, siret) for u in found[start:start + per_page]],
        total_results=len(found),
        page=page,
        per_page=per_page,
        total_pages=max(1, math.ceil(len(found) / per_page)) if found else 0,
    )
