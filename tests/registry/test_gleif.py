"""The GLEIF adapter against the registers simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests

from services.registry.registers import ACTIVE, INACTIVE
from services.registry.registers.gleif import Gleif, parse
from shared.upstream import UpstreamError
from tests.registry import adapter_cases

ACTIVE_LEI = "5299009TRACE30ACME93"
LAPSED_LEI = "5299009TRACE30NORD32"
RETIRED_LEI = "2138009TRACE30MILL84"
MERGED_LEI = "5493009TRACE30MERG83"
UNKNOWN_LEI = "5299009TRACE30UNKN10"


def adapter(base: str, session: requests.Session) -> Gleif:
    return Gleif(base + "/gleif/api/v1", session=session, connect_timeout_s=1,
                 read_timeout_s=0.5)


@pytest.fixture
def gleif(sim: str, session: requests.Session) -> Gleif:
    return adapter(sim, session)


def test_issued_and_active(gleif: Gleif) -> None:
    r = gleif.lookup(kind="lei", number=ACTIVE_LEI)
    assert r is not None
    assert (r.status, r.status_raw) == (ACTIVE, "ISSUED/ACTIVE")
    assert r.registered_name == "ACME Handels GmbH"
    assert r.legal_form == "2HBR" and r.country == "DE"
    assert r.registered_as == "HRB 123456"
    assert r.address == "Musterstraße 1, 80331 München, DE"
    assert r.address_parts == {"street": "Musterstraße 1", "postcode": "80331",
                               "city": "München", "country": "DE"}
    assert r.url == f"https://search.gleif.org/#/record/{ACTIVE_LEI}"
    assert r.status_detail is None and r.ceased_on is None


def test_lapsed_lei_of_a_living_entity_is_inactive(gleif: Gleif) -> None:
    r = gleif.lookup(kind="lei", number=LAPSED_LEI)
    assert r is not None
    assert (r.status, r.status_raw) == (INACTIVE, "LAPSED/ACTIVE")
    assert "lapsed" in (r.status_detail or "")


@pytest.mark.parametrize(
    ("lei", "raw", "reason", "ceased"),
    [(RETIRED_LEI, "RETIRED/INACTIVE", "DISSOLVED", "2023-05-31"),
     (MERGED_LEI, "MERGED/INACTIVE", "CORPORATE_ACTION", "2022-12-31")],
)
def test_retired_and_merged_are_inactive(gleif: Gleif, lei: str, raw: str, reason: str,
                                         ceased: str) -> None:
    r = gleif.lookup(kind="lei", number=lei)
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail, r.ceased_on) == (INACTIVE, raw, reason,
                                                                        ceased)


def test_unknown_lei_is_none(gleif: Gleif, sim: str) -> None:
    assert gleif.lookup(kind="lei", number=UNKNOWN_LEI) is None
    assert adapter_cases.stats_status(sim, "gleif", 404) == 1


def test_other_sources_knobs_do_not_apply(gleif: Gleif, sim: str) -> None:
    adapter_cases.only_this_source(sim, "gleif", "brreg",
                                   lambda: gleif.lookup(kind="lei", number=ACTIVE_LEI))


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse({"data": {"attributes": {}}}, ACTIVE_LEI)
