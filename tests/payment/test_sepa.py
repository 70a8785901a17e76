"""SEPA membership from the project's own table (services.payment.sepa)."""

from __future__ import annotations

import pytest
from schwifty import IBAN, registry

from services.payment import ibans, sepa
from services.payment.checks import _sepa_check

EU = set("AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE".split())
EEA = {"IS", "LI", "NO"}
OTHERS = {"CH", "GB", "MC", "SM", "AD", "VA"}
SINCE_2024 = {"AL", "ME", "MD", "MK", "RS"}


def test_41_countries_as_of_2025() -> None:
    countries = set(sepa.table().countries())
    assert len(EU) == 27
    assert countries == EU | EEA | OTHERS | SINCE_2024
    assert len(countries) == 41


def test_the_table_is_dated_and_sourced() -> None:
    t = sepa.table()
    assert t.as_of == "2025-05-22"
    assert "EPC409-09" in t.source and "europeanpaymentscouncil.eu" in t.source
    assert "Serbia" in t.source


def test_serbia_since_may_2025() -> None:
    rs = sepa.lookup("RS")
    assert rs.member and rs.since == "2025-05" and rs.kind == "country"


@pytest.mark.parametrize("code", sorted(SINCE_2024))
def test_the_new_members(code: str) -> None:
    entry = sepa.lookup(code)
    assert entry.member and entry.since is not None and entry.since.startswith(("2024", "2025"))


@pytest.mark.parametrize("code", ["NC", "PF", "WF"])
def test_pacific_french_territories_are_not_sepa(code: str) -> None:
    entry = sepa.lookup(code)
    assert not entry.member and entry.parent == "FR" and "CFP" in (entry.note or "")
    # schwifty says otherwise: the project's table is what decides
    assert registry.get_iban_spec(code).in_sepa_zone is True


@pytest.mark.parametrize("code", ["TF", "FO", "GL", "XK", "TR", "US", "UA"])
def test_other_non_members(code: str) -> None:
    assert not sepa.lookup(code).member


@pytest.mark.parametrize("code", ["GF", "GP", "MQ", "RE", "YT", "BL", "MF", "PM", "AX", "GI",
                                  "GG", "JE", "IM"])
def test_territories_in_sepa(code: str) -> None:
    entry = sepa.lookup(code)
    assert entry.member and entry.kind == "territory" and entry.parent


def test_lookup_is_case_insensitive_and_unknown_is_not_member() -> None:
    assert sepa.lookup("rs").member
    unknown = sepa.lookup("QQ")
    assert not unknown.member and unknown.name == ""


def test_every_row_is_an_iban_country_or_kosovo() -> None:
    for code in sepa.table().entries:
        assert ibans.spec(code) is not None, code


@pytest.mark.parametrize("text", [
    "code,name,kind,parent,sepa,since,note\nDE,Germany,country,,yes,,\n",  # no header
    "# as_of: 2025-05-22\n# source: x\ncode,name,kind,parent,sepa,since,note\n"
    "DE,Germany,country,,maybe,,\n",  # bad value
])
def test_a_bad_table_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        sepa.parse(text)


def test_sepa_check_through_the_service_core() -> None:
    assert _sepa_check(sepa.lookup("RS")).result == "pass"
    nc = _sepa_check(sepa.lookup("NC"))
    assert nc.result == "warning" and nc.code == "SEPA_NOT_MEMBER"
    assert "New Caledonia" in nc.detail
    assert _sepa_check(None).result == "not_available"
    assert ibans.check(str(IBAN.from_bban("NC", "20041010050500013M02606"))).valid
