"""The ARES adapter against the registers simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests
import responses

from services.registry.registers import ACTIVE, INACTIVE
from services.registry.registers.cz_ares import CzAres, parse
from shared.upstream import UpstreamError
from tests.registry import adapter_cases

SOURCE = "ares"
ACTIVE_ICO = "27300307"


def adapter(base: str, session: requests.Session) -> CzAres:
    return CzAres(base + "/ares/ekonomicke-subjekty-v-be/rest", session=session,
                  connect_timeout_s=1, read_timeout_s=0.5)


@pytest.fixture
def ares(sim: str, session: requests.Session) -> CzAres:
    return adapter(sim, session)


def test_active(ares: CzAres) -> None:
    r = ares.lookup(kind="ico", number=ACTIVE_ICO)
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail, r.ceased_on) == (ACTIVE, "AKTIVNI", None,
                                                                      None)
    assert r.registered_name == "NOVÁ TECHNIKA s.r.o."
    assert r.legal_form == "112 Společnost s ručením omezeným"
    assert r.address == "Na Příkopě 859/22, Nové Město, 11000 Praha"
    assert r.url == "https://ares.gov.cz/ekonomicke-subjekty?ico=27300307"
    assert r.country == "CZ"


@pytest.mark.parametrize(
    ("ico", "raw", "detail", "ceased_on"),
    [
        # dissolved: a datumZaniku, and ZANIKLY in the registr osob
        ("27300315", "ZANIKLY", "datumZaniku 2023-06-30", "2023-06-30"),
        # a sole trader whose registration ended, without datumZaniku: the state alone counts
        ("07300344", "ZANIKLY", "stavZdrojeRos", None),
    ],
)
def test_inactive(ares: CzAres, ico: str, raw: str, detail: str, ceased_on: str | None) -> None:
    r = ares.lookup(kind="ico", number=ico)
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail, r.ceased_on) == (INACTIVE, raw, detail,
                                                                      ceased_on)


def test_insolvency_is_a_detail_of_an_active_company(ares: CzAres) -> None:
    r = ares.lookup(kind="ico", number="27300323")
    assert r is not None
    assert (r.status, r.status_raw) == (ACTIVE, "AKTIVNI")
    assert r.status_detail == "in the insolvency register (stavZdrojeIr AKTIVNI)"
    assert r.address == "Sklářská 12, Harrachov, 51246 Harrachov"


def test_unknown_is_none(ares: CzAres, sim: str) -> None:
    assert ares.lookup(kind="ico", number="27300331") is None
    assert adapter_cases.stats_status(sim, SOURCE, 404) == 1


def test_other_sources_knobs_do_not_apply(ares: CzAres, sim: str) -> None:
    adapter_cases.only_this_source(sim, SOURCE, "krs",
                                   lambda: ares.lookup(kind="ico", number=ACTIVE_ICO))


@responses.activate
def test_refused_input_and_bad_json(session: requests.Session) -> None:
    # Unit level, with `responses`: answers the simulator has no knob for.
    base = "http://ares.invalid"
    url = f"{base}/ares/ekonomicke-subjekty-v-be/rest/ekonomicke-subjekty/{ACTIVE_ICO}"
    responses.get(url, json={"kod": "CHYBA_VSTUPU", "subKod": "VSTUP_NEVALIDNI_FORMAT_ICO"},
                  status=400)
    with pytest.raises(UpstreamError) as info:
        adapter(base, session).lookup(kind="ico", number=ACTIVE_ICO)
    assert not info.value.retryable and info.value.code == "UPSTREAM_REJECTED"
    responses.replace(responses.GET, url, body="<html>Údržba systému</html>", status=200,
                      content_type="text/html")
    with pytest.raises(UpstreamError):
        adapter(base, session).lookup(kind="ico", number=ACTIVE_ICO)


def test_primary_source_without_the_registr_osob() -> None:
    r = parse({"obchodniJmeno": "X s.r.o.", "pravniForma": "999", "primarniZdroj": "vr",
               "seznamRegistraci": {"stavZdrojeVr": "HISTORICKY"},
               "sidlo": {"nazevUlice": "Dlouhá", "cisloDomovni": 5, "psc": 11000,
                         "nazevObce": "Praha", "nazevStatu": "Česká republika"}}, "27300307")
    assert (r.status, r.status_raw, r.status_detail) == (INACTIVE, "HISTORICKY", "stavZdrojeVr")
    assert r.legal_form == "999"
    assert r.address == "Dlouhá 5, 11000 Praha, Česká republika"
    bare = parse({"obchodniJmeno": "Y a.s."}, "27300307")
    assert (bare.status, bare.status_raw, bare.legal_form, bare.address) == (
        ACTIVE, "AKTIVNI", None, None)


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse(["not", "an", "object"], ACTIVE_ICO)
    with pytest.raises(UpstreamError):
        parse({"seznamRegistraci": ["AKTIVNI"]}, ACTIVE_ICO)
