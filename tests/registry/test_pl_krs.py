"""The KRS adapter against the registers simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests
import responses

from services.registry.registers import ACTIVE, INACTIVE, RegisterRecord
from services.registry.registers.pl_krs import PlKrs, parse, parse_full
from shared.upstream import UpstreamError
from tests.registry import adapter_cases

SOURCE = "krs"
ACTIVE_KRS = "0000730030"
API = "https://api-krs.ms.gov.pl/api/krs"


def adapter(base: str, session: requests.Session) -> PlKrs:
    return PlKrs(base + "/krs/api/krs", session=session, connect_timeout_s=1, read_timeout_s=0.5)


@pytest.fixture
def krs(sim: str, session: requests.Session) -> PlKrs:
    return adapter(sim, session)


def test_active(krs: PlKrs, sim: str) -> None:
    r = krs.lookup(kind="krs", number=ACTIVE_KRS)
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail, r.ceased_on) == (ACTIVE, "active", None,
                                                                      None)
    assert r.registered_name == "WISŁA HANDEL SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert r.legal_form == "SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert r.address == "UL. DŁUGA 5/2, 00-950 WARSZAWA, POLSKA"
    assert r.url == f"{API}/OdpisAktualny/0000730030?rejestr=P&format=json"
    assert r.country == "PL"
    assert adapter_cases.stats_status(sim, SOURCE, 200) == 1  # register P only


@pytest.mark.parametrize(
    ("number", "raw", "detail"),
    [
        ("0000730049", "liquidation", "dzial6.likwidacja"),
        ("0000730057", "bankruptcy", "dzial6.postepowanieUpadlosciowe"),
    ],
)
def test_inactive(krs: PlKrs, number: str, raw: str, detail: str) -> None:
    r = krs.lookup(kind="krs", number=number)
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail) == (INACTIVE, raw, detail)


def test_deleted_entity_is_dated_from_its_full_extract(krs: PlKrs, sim: str) -> None:
    r = krs.lookup(kind="krs", number="0000730065")
    assert r is not None
    assert (r.status, r.status_raw, r.ceased_on) == (INACTIVE, "deleted", "2022-08-12")
    assert r.status_detail == "deleted from the KRS by entry 2 of 12.08.2022"
    assert r.registered_name == "STARY RYNEK SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert r.url == f"{API}/OdpisPelny/0000730065?rejestr=P&format=json"
    assert adapter_cases.stats_status(sim, SOURCE, 204) == 1  # no fallback to register S
    assert adapter_cases.stats_status(sim, SOURCE, 200) == 1


def test_association_register_after_a_404(krs: PlKrs, sim: str) -> None:
    r = krs.lookup(kind="krs", number="0000730073")
    assert r is not None
    assert (r.status, r.registered_name, r.legal_form) == (ACTIVE, "FUNDACJA ZIELONY KRAKÓW",
                                                           "FUNDACJA")
    assert r.url == f"{API}/OdpisAktualny/0000730073?rejestr=S&format=json"
    assert adapter_cases.stats_status(sim, SOURCE, 404) == 1


def test_unknown_is_none(krs: PlKrs, sim: str) -> None:
    assert krs.lookup(kind="krs", number="0000730081") is None
    assert adapter_cases.stats_status(sim, SOURCE, 404) == 2  # P, then S


def test_other_sources_knobs_do_not_apply(krs: PlKrs, sim: str) -> None:
    adapter_cases.only_this_source(sim, SOURCE, "ares",
                                   lambda: krs.lookup(kind="krs", number=ACTIVE_KRS))


@responses.activate
def test_deleted_without_its_full_extract_and_bad_json(session: requests.Session) -> None:
    # Unit level, with `responses`: answers the simulator has no knob for.
    base = "http://krs.invalid"
    current = f"{base}/krs/api/krs/OdpisAktualny/0000730065"
    responses.get(current, status=204)
    responses.get(f"{base}/krs/api/krs/OdpisPelny/0000730065", body="busy", status=503)
    r = adapter(base, session).lookup(kind="krs", number="0000730065")
    assert r is not None
    assert (r.status, r.status_raw, r.ceased_on, r.registered_name) == (
        INACTIVE, "deleted", None, None)
    assert r.status_detail == "OdpisAktualny 204: no current extract (deleted from the KRS)"
    responses.replace(responses.GET, current, body="<html>Przerwa techniczna</html>",
                      status=200, content_type="text/html")
    with pytest.raises(UpstreamError):
        adapter(base, session).lookup(kind="krs", number="0000730065")


def _extract(header: dict, dzial6: dict | None = None) -> dict:
    return {"odpis": {"rodzaj": "Aktualny", "naglowekA": header,
                      "dane": {"dzial1": {"danePodmiotu": {"nazwa": "X SPÓŁKA AKCYJNA"}},
                               "dzial6": dzial6 or {}}}}


def test_a_current_extract_that_dates_a_deletion() -> None:
    r = parse(_extract({"stanPozycji": 1, "dataWykreslenia": "31.01.2024"}), ACTIVE_KRS, "P")
    assert (r.status, r.status_raw, r.ceased_on) == (INACTIVE, "deleted", "2024-01-31")
    assert r.status_detail == "naglowekA.dataWykreslenia 31.01.2024"
    r = parse(_extract({"stanPozycji": 2}, {"likwidacja": [{}]}), ACTIVE_KRS, "P")
    assert (r.status, r.status_raw, r.status_detail) == (INACTIVE, "deleted",
                                                         "naglowekA.stanPozycji 2")
    dissolved = parse(_extract({"stanPozycji": 1},
                               {"rozwiazanieUniewaznienie": {"okreslenieOkolicznosci": "X"}}),
                      ACTIVE_KRS, "S")
    assert (dissolved.status, dissolved.status_raw) == (INACTIVE, "dissolved")
    assert dissolved.url.endswith("?rejestr=S&format=json") and dissolved.address is None


def test_full_extract_of_another_shape_keeps_the_deletion() -> None:
    record = RegisterRecord(status=INACTIVE, status_raw="deleted", registered_name=None,
                            url="u", country="PL")
    assert parse_full({"odpis": {"naglowekP": {"wpis": "none"}}}, record) == record
    assert parse_full([], record) == record


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse({"hits": []}, ACTIVE_KRS, "P")
    with pytest.raises(UpstreamError):
        parse({"odpis": {"dane": {"dzial1": ["x"]}}}, ACTIVE_KRS, "P")
