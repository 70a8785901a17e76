"""The Companies House adapter against the registers simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests

from services.registry.registers import ACTIVE, INACTIVE
from services.registry.registers.gb_companies_house import CompaniesHouse, parse
from shared.upstream import UpstreamError
from tests.registry import adapter_cases
from tests.registry.conftest import CH_KEY

SOURCE = "companies_house"


def adapter(base: str, session: requests.Session, key: str = CH_KEY) -> CompaniesHouse:
    return CompaniesHouse(base + "/companies-house", api_key=key, session=session,
                          connect_timeout_s=1, read_timeout_s=0.5)


@pytest.fixture
def ch(sim: str, session: requests.Session) -> CompaniesHouse:
    return adapter(sim, session)


def test_active(ch: CompaniesHouse) -> None:
    r = ch.lookup(kind="company_number", number="01234567")
    assert r is not None
    assert (r.status, r.status_raw) == (ACTIVE, "active")
    assert r.registered_name == "ACME TRADING LIMITED" and r.legal_form == "ltd"
    assert r.address == "1 Market Street, London, EC1A 1BB, England"
    assert r.url == ("https://find-and-update.company-information.service.gov.uk/company/"
                     "01234567")


def test_active_with_proposal_to_strike_off(ch: CompaniesHouse) -> None:
    r = ch.lookup(kind="company_number", number="OC300001")
    assert r is not None
    assert (r.status, r.status_detail) == (ACTIVE, "active-proposal-to-strike-off")
    assert r.address is not None and r.address.startswith("Suite 4, 10 High Street")
    # "Suite 4" names the suite, not the house: the street line is the address line's
    assert r.address_parts is not None and r.address_parts["street"] == "10 High Street"


@pytest.mark.parametrize(
    ("number", "raw", "ceased"),
    [("SC123456", "dissolved", "2023-02-14"), ("00006402", "liquidation", None),
     ("NI012345", "administration", None)],
)
def test_inactive(ch: CompaniesHouse, number: str, raw: str, ceased: str | None) -> None:
    r = ch.lookup(kind="company_number", number=number)
    assert r is not None
    assert (r.status, r.status_raw, r.ceased_on) == (INACTIVE, raw, ceased)


def test_unknown_is_none(ch: CompaniesHouse, sim: str) -> None:
    assert ch.lookup(kind="company_number", number="09999999") is None
    assert adapter_cases.stats_status(sim, SOURCE, 404) == 1


def test_wrong_key_is_an_auth_error(sim: str, session: requests.Session) -> None:
    with pytest.raises(UpstreamError) as info:
        adapter(sim, session, key="wrong").lookup(kind="company_number", number="01234567")
    assert not info.value.retryable and not info.value.outage
    assert info.value.code == "UPSTREAM_AUTH"


def test_rate_limit_window_sends_retry_after(ch: CompaniesHouse, sim: str) -> None:
    adapter_cases.configure(sim, sources={SOURCE: {"rate_limit": 2}})
    ch.lookup(kind="company_number", number="01234567")
    ch.lookup(kind="company_number", number="01234567")
    with pytest.raises(UpstreamError) as info:
        ch.lookup(kind="company_number", number="01234567")
    assert info.value.retry_after_s == 1.0


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse({"company_name": "X"}, "01234567")
