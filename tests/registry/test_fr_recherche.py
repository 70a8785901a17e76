"""The Recherche d'entreprises adapter against the registers simulator over real HTTP."""

from __future__ import annotations

import pytest
import requests
import responses

from services.registry.registers import ACTIVE, INACTIVE
from services.registry.registers.fr_recherche import FrRecherche, parse
from shared.upstream import UpstreamError
from tests.registry import adapter_cases

SOURCE = "recherche_entreprises"


def adapter(base: str, session: requests.Session) -> FrRecherche:
    return FrRecherche(base + "/recherche-entreprises", session=session, connect_timeout_s=1,
                       read_timeout_s=0.5)


@pytest.fixture
def fr(sim: str, session: requests.Session) -> FrRecherche:
    return adapter(sim, session)


def test_active_company(fr: FrRecherche) -> None:
    r = fr.lookup(kind="siren", number="812345676")
    assert r is not None
    assert (r.status, r.status_raw) == (ACTIVE, "A")
    assert r.registered_name == "BOULANGERIE MARTIN"
    assert r.legal_form == "5710 SAS, société par actions simplifiée"
    assert r.address == "4 RUE DU FOUR 75006 PARIS"
    assert r.address_parts == {"street": "4 RUE DU FOUR", "postcode": "75006", "city": "PARIS"}
    assert r.url == "https://annuaire-entreprises.data.gouv.fr/entreprise/812345676"
    assert r.country == "FR"


def test_ceased_company(fr: FrRecherche) -> None:
    r = fr.lookup(kind="siren", number="798765434")
    assert r is not None
    assert (r.status, r.status_raw, r.ceased_on) == (INACTIVE, "C", "2025-05-22")
    assert r.legal_form == "5499 Société à responsabilité limitée (SARL)"


def test_open_establishment(fr: FrRecherche) -> None:
    r = fr.lookup(kind="siret", number="81234567600017")
    assert r is not None
    assert (r.status, r.status_raw) == (ACTIVE, "A/A")
    assert r.url.endswith("/etablissement/81234567600017")


def test_closed_establishment_of_an_active_company(fr: FrRecherche) -> None:
    r = fr.lookup(kind="siret", number="81234567600025")
    assert r is not None
    assert (r.status, r.status_raw, r.ceased_on) == (INACTIVE, "A/F", "2024-03-31")
    assert r.status_detail == "the establishment is closed; the company is active"
    assert "BOULOGNE" in (r.address or "")
    # the establishment's address, not the head office's
    assert r.address_parts == {"street": "18 AVENUE DE LA GARE", "postcode": "92100",
                               "city": "BOULOGNE-BILLANCOURT"}


def test_rcs_is_looked_up_by_its_siren(fr: FrRecherche) -> None:
    r = fr.lookup(kind="rcs", number="RCS Paris B 812345676")
    assert r is not None and r.registered_name == "BOULANGERIE MARTIN"


def test_unknown_siren_and_siret_are_none(fr: FrRecherche, sim: str) -> None:
    assert fr.lookup(kind="siren", number="888000114") is None
    assert fr.lookup(kind="siret", number="81234567600033") is None  # unknown establishment
    assert adapter_cases.stats_status(sim, SOURCE, 200) == 2  # the API answers "no results"


def test_a_404_is_none(sim: str, session: requests.Session) -> None:
    # The real API answers no results rather than 404; a 404 (a wrong base URL, say) still
    # must not be taken for a record.
    wrong = FrRecherche(sim + "/recherche-entreprises/nowhere", session=session)
    assert wrong.lookup(kind="siren", number="812345676") is None


@responses.activate
def test_a_refused_query_is_rejected_and_html_is_a_bad_response(
    session: requests.Session,
) -> None:
    # Unit level, with `responses`: answers the simulator has no knob for.
    base = "http://recherche.invalid"
    url = f"{base}/recherche-entreprises/search"
    responses.get(url, json={"erreur": "q trop court"}, status=400)
    with pytest.raises(UpstreamError) as info:
        adapter(base, session).lookup(kind="siren", number="812345676")
    assert not info.value.retryable and info.value.code == "UPSTREAM_REJECTED"
    responses.replace(responses.GET, url, body="<html>maintenance</html>", status=200,
                      content_type="text/html")
    with pytest.raises(UpstreamError):
        adapter(base, session).lookup(kind="siren", number="812345676")


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse({"hits": []}, "812345676")
