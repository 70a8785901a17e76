"""France, API Recherche d'entreprises (DINUM): ``GET {base}/search?q={SIREN or SIRET}``.

The API searches; the adapter keeps only the result whose ``siren`` is the one asked for (none:
``not_found``). The legal unit's ``etat_administratif`` is ``A`` (active) or ``C`` (ceased,
with ``date_fermeture``). For a SIRET the establishment's own state counts too: ``A`` or ``F``
(fermé); a closed establishment of an active company is ``inactive`` with a detail saying so.
An RCS number is looked up by its SIREN.
"""

from __future__ import annotations

from typing import Any

from stdnum.fr import rcs as fr_rcs

from services.registry.registers import (
    ACTIVE,
    INACTIVE,
    Found,
    RegisterRecord,
    http,
)
from shared.upstream import Fault, UpstreamError, json_of

COMPANY_URL = "https://annuaire-entreprises.data.gouv.fr/entreprise/{siren}"
ESTABLISHMENT_URL = "https://annuaire-entreprises.data.gouv.fr/etablissement/{siret}"

#: Common INSEE "catégories juridiques" (nature_juridique), for a readable legal form.
NATURES: dict[str, str] = {
    "1000": "Entrepreneur individuel",
    "5202": "Société en nom collectif",
    "5306": "Société en commandite simple",
    "5308": "Société en commandite par actions",
    "5498": "SARL unipersonnelle (EURL)",
    "5499": "Société à responsabilité limitée (SARL)",
    "5599": "SA à conseil d'administration",
    "5699": "SA à directoire",
    "5710": "SAS, société par actions simplifiée",
    "5720": "Société par actions simplifiée à associé unique (SASU)",
    "6540": "Société civile immobilière",
    "9220": "Association déclarée",
}


class FrRecherche(http.HttpRegister):
    """The Recherche d'entreprises adapter (one per process)."""

    source = "fr_recherche"
    title = "Annuaire des entreprises (API Recherche d'entreprises)"

    def lookup(
        self, *, kind: str, number: str, timeout_s: float | None = None
    ) -> RegisterRecord | None:
        """See :meth:`services.registry.registers.Register.lookup`."""
        http.sendable(number=number)
        siret = number if kind == "siret" else None
        siren = fr_rcs.to_siren(number) if kind == "rcs" else number[:9]
        response = self.call("GET", "/search", timeout_s=timeout_s,
                             params={"q": siret or siren, "page": 1, "per_page": 5})
        if response.status_code != 200:
            return None
        return parse(json_of(response, self.title), siren, siret)


def _legal_form(code: Any) -> str | None:
    if not code:
        return None
    label = NATURES.get(str(code))
    return f"{code} {label}" if label else str(code)


def parse(document: Any, siren: str, siret: str | None = None) -> RegisterRecord | None:
    """The record of ``siren`` (and establishment ``siret``) in a search answer, or None."""
    try:
        unit = next((r for r in document["results"] if r.get("siren") == siren), None)
        if unit is None:
            return None
        state = str(unit.get("etat_administratif") or "")
        headquarters = unit.get("siege") or {}
        status: Found = ACTIVE if state == "A" else INACTIVE
        raw, detail, url = state, None, COMPANY_URL.format(siren=siren)
        address, located = headquarters.get("adresse"), headquarters
        ceased_on = unit.get("date_fermeture")
        if siret:
            places = [headquarters, *(unit.get("matching_etablissements") or [])]
            place = next((p for p in places if p.get("siret") == siret), None)
            if place is None:
                return None
            place_state = str(place.get("etat_administratif") or "")
            raw = f"{state}/{place_state}"
            url = ESTABLISHMENT_URL.format(siret=siret)
            address, located = place.get("adresse") or address, place
            if place_state != "A":
                status = INACTIVE
                ceased_on = place.get("date_fermeture") or ceased_on
                if state == "A":
                    detail = "the establishment is closed; the company is active"
        return RegisterRecord(
            status=status,
            status_raw=raw,
            status_detail=detail,
            registered_name=unit.get("nom_raison_sociale") or unit.get("nom_complet"),
            legal_form=_legal_form(unit.get("nature_juridique")),
            address=address,
            address_parts=http.address_parts(
                street=" ".join(str(located[k]) for k in ("numero_voie", "type_voie",
                                                          "libelle_voie") if located.get(k)),
                postcode=located.get("code_postal"), city=located.get("libelle_commune")),
            country="FR",
            ceased_on=ceased_on,
            url=url,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"Recherche d'entreprises answer has an unexpected shape: "
                                  f"{e!r}",
                            Fault.BAD_RESPONSE) from e
