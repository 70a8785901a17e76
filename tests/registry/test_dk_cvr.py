"""The CVR adapter against the registers simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests

from services.registry.registers import ACTIVE, INACTIVE
from services.registry.registers.dk_cvr import DkCvr, parse
from shared.upstream import UpstreamError
from tests.registry import adapter_cases
from tests.registry.conftest import CVR_PASSWORD, CVR_USER

SOURCE = "cvr"


def adapter(base: str, session: requests.Session, password: str = CVR_PASSWORD) -> DkCvr:
    return DkCvr(base + "/cvr", username=CVR_USER, password=password, session=session,
                 connect_timeout_s=1, read_timeout_s=0.5)


@pytest.fixture
def cvr(sim: str, session: requests.Session) -> DkCvr:
    return adapter(sim, session)


def test_active(cvr: DkCvr) -> None:
    r = cvr.lookup(kind="cvr", number="35123458")
    assert r is not None
    assert (r.status, r.status_raw) == (ACTIVE, "NORMAL")
    assert r.registered_name == "NORDISK DESIGN A/S"
    assert r.legal_form == "A/S (Aktieselskab)"
    assert r.address == "Bremerholm 29, 1069 København K, DK"
    assert r.address_parts == {"street": "Bremerholm 29", "postcode": "1069",
                               "city": "København K", "country": "DK"}
    assert r.url == "https://datacvr.virk.dk/enhed/virksomhed/35123458"


def test_aktiv_spelled_otherwise_is_active(cvr: DkCvr) -> None:
    r = cvr.lookup(kind="cvr", number="38456784")
    assert r is not None and (r.status, r.status_raw) == (ACTIVE, "Aktiv")


def test_bankrupt(cvr: DkCvr) -> None:
    r = cvr.lookup(kind="cvr", number="36234563")
    assert r is not None and (r.status, r.status_raw) == (INACTIVE, "UNDERKONKURS")


def test_dissolved_after_bankruptcy(cvr: DkCvr) -> None:
    r = cvr.lookup(kind="cvr", number="37345679")
    assert r is not None
    assert (r.status, r.status_raw, r.ceased_on) == (INACTIVE, "OPLØSTEFTERKONKURS", "2022-06-30")


def test_unknown_is_none(cvr: DkCvr) -> None:
    assert cvr.lookup(kind="cvr", number="39567806") is None


def test_a_404_is_none(sim: str, session: requests.Session) -> None:
    wrong = DkCvr(sim + "/cvr/nowhere", username=CVR_USER, password=CVR_PASSWORD,
                  session=session)
    assert wrong.lookup(kind="cvr", number="35123458") is None
    assert adapter_cases.stats_status(sim, SOURCE, 404) == 1


def test_wrong_password_is_an_auth_error(sim: str, session: requests.Session) -> None:
    with pytest.raises(UpstreamError):
        adapter(sim, session, password="wrong").lookup(  # noqa: S106 - a wrong one on purpose
            kind="cvr", number="35123458")


def test_records_without_a_status_use_the_life_span() -> None:
    def answer(ended: str | None) -> dict:
        company = {"virksomhedMetadata": {"nyesteNavn": {"navn": "X ApS"}},
                   "livsforloeb": [{"periode": {"gyldigFra": "2001-01-01", "gyldigTil": ended}}]}
        return {"hits": {"total": 1, "hits": [{"_source": {"Vrvirksomhed": company}}]}}

    alive, ceased = parse(answer(None), "35123458"), parse(answer("2020-01-01"), "35123458")
    assert alive is not None and ceased is not None
    assert (alive.status, ceased.status, ceased.ceased_on) == (ACTIVE, INACTIVE, "2020-01-01")


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse({"hits": {"hits": [{"_source": {}}]}}, "35123458")
