"""The Brønnøysund adapter against the registers simulator over real HTTP on loopback."""

from __future__ import annotations

import pytest
import requests

from services.registry.registers import ACTIVE, INACTIVE
from services.registry.registers.no_brreg import NoBrreg, parse
from shared.upstream import UpstreamError
from tests.registry import adapter_cases

SOURCE = "brreg"


def adapter(base: str, session: requests.Session) -> NoBrreg:
    return NoBrreg(base + "/brreg/enhetsregisteret/api", session=session, connect_timeout_s=1,
                   read_timeout_s=0.5)


@pytest.fixture
def brreg(sim: str, session: requests.Session) -> NoBrreg:
    return adapter(sim, session)


def test_active(brreg: NoBrreg) -> None:
    r = brreg.lookup(kind="orgnr", number="912345602")
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail) == (ACTIVE, "active", None)
    assert r.registered_name == "NORDISK FISK AS"
    assert r.legal_form == "AS (Aksjeselskap)"
    assert r.address == "Bryggen 5, 5003 BERGEN, Norge"
    assert r.address_parts is not None
    assert (r.address_parts["street"], r.address_parts["postcode"], r.address_parts["city"]) == (
        "Bryggen 5", "5003", "BERGEN")
    assert r.url == "https://virksomhet.brreg.no/nb/oppslag/enheter/912345602"


@pytest.mark.parametrize(
    ("orgnr", "raw", "field"),
    [
        ("912345610", "bankrupt", "konkurs"),
        ("912345629", "under liquidation", "underAvvikling"),
        ("912345637", "forced liquidation", "underTvangsavviklingEllerTvangsopplosning"),
        ("912345645", "deleted", "slettedato 2024-11-26"),
    ],
)
def test_inactive(brreg: NoBrreg, orgnr: str, raw: str, field: str) -> None:
    r = brreg.lookup(kind="orgnr", number=orgnr)
    assert r is not None
    assert (r.status, r.status_raw, r.status_detail) == (INACTIVE, raw, field)


def test_deleted_for_legal_reasons_410(brreg: NoBrreg, sim: str) -> None:
    r = brreg.lookup(kind="orgnr", number="912345653")
    assert r is not None
    assert (r.status, r.status_raw, r.registered_name) == (INACTIVE, "deleted", None)
    assert adapter_cases.stats_status(sim, SOURCE, 410) == 1


def test_unknown_is_none(brreg: NoBrreg, sim: str) -> None:
    assert brreg.lookup(kind="orgnr", number="912345688") is None
    assert adapter_cases.stats_status(sim, SOURCE, 404) == 1


def test_mva_number(brreg: NoBrreg) -> None:
    registered = brreg.lookup(kind="mva", number="912345602MVA")
    assert registered is not None and registered.status_detail is None
    not_registered = brreg.lookup(kind="mva", number="912345661MVA")
    assert not_registered is not None and not_registered.status == ACTIVE
    assert not_registered.status_detail == "not registered in Merverdiavgiftsregisteret"


def test_unexpected_shape_is_a_bad_response() -> None:
    with pytest.raises(UpstreamError):
        parse(["not", "an", "object"], "912345602")
