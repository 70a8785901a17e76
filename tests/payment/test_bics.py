"""BIC format and BIC-IBAN consistency (services.payment.bics)."""

from __future__ import annotations

import pytest

from services.payment import bics, ibans

COMMERZBANK_IBAN = "DE89370400440532013000"  # bank code 37040044: COBADEFFXXX
ODDO_IBAN = "DE75100202008301661313"  # bank code 10020200: the directory gives BHFBDEFF100


def fmt(raw: str | None) -> tuple[str | None, ibans.Check]:
    return bics.check_format(raw)


def consistency(bic: str, iban: str) -> ibans.Check:
    value, f = bics.check_format(bic)
    return bics.check_consistency(value, f, ibans.check(iban))


# --- format ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "clean"), [
    ("COBADEFFXXX", "COBADEFFXXX"),
    ("COBADEFF", "COBADEFF"),
    ("coba de ff xxx", "COBADEFFXXX"),
    ("".join(chr(ord(c) + 0xFEE0) for c in "COBADEFF"), "COBADEFF"),  # full-width
    ("COBA\u200bDEFF", "COBADEFF"),
    ("1234DEFF", "1234DEFF"),  # ISO 9362:2022 allows digits in the institution code
    ("RAIFXKPR", "RAIFXKPR"),  # Kosovo, XK: user-assigned in ISO 3166, used by SWIFT
    ("TEBKXKPRXXX", "TEBKXKPRXXX"),
    ("NDEAFIHH", "NDEAFIHH"),
])
def test_valid_formats(raw: str, clean: str) -> None:
    bic, check = fmt(raw)
    assert bic == clean
    assert check.result == "pass" and check.code is None


@pytest.mark.parametrize(("raw", "why"), [
    ("COBADEF", "8 or 11 characters; this one has 7"),
    ("COBADEFFXX", "8 or 11 characters; this one has 10"),
    ("COBADEFFXXXX", "8 or 11 characters; this one has 12"),
    ("COBA1EFF", "characters 5 and 6 must be letters"),
    ("COBAZZFF", "'ZZ' (characters 5 and 6) is not a country code"),
    ("COBA-DE-FF", "only A-Z and 0-9"),
    ("COBADEFF_X1", "only A-Z and 0-9"),
    ("COB\u0410DEFF", "CYRILLIC CAPITAL LETTER A"),
])
def test_invalid_formats(raw: str, why: str) -> None:
    _, check = fmt(raw)
    assert check.result == "fail" and check.code == "BIC_FORMAT"
    assert why in check.detail


def test_absent_bic_is_not_available() -> None:
    bic, check = fmt(None)
    assert bic is None and check.result == "not_available"
    assert bics.check_consistency(None, check, ibans.check(COMMERZBANK_IBAN)).result == \
        "not_available"


# --- consistency ----------------------------------------------------------------------------


@pytest.mark.parametrize("bic", ["COBADEFFXXX", "COBADEFF", "cobadeff xxx"])
def test_the_directorys_bic_passes(bic: str) -> None:
    check = consistency(bic, COMMERZBANK_IBAN)
    assert check.result == "pass", check.detail
    assert "37040044" in check.detail


def test_a_bic_listed_for_the_bank_code_passes() -> None:
    assert consistency("BHFBDEFF100", ODDO_IBAN).result == "pass"


def test_country_mismatch_fails() -> None:
    check = consistency("BNPAFRPP", COMMERZBANK_IBAN)
    assert check.result == "fail" and check.code == "BIC_COUNTRY_MISMATCH"
    assert "FR" in check.detail and "DE" in check.detail


def test_another_bank_fails() -> None:
    check = consistency("DEUTDEFF", COMMERZBANK_IBAN)
    assert check.result == "fail" and check.code == "BIC_BANK_MISMATCH"
    assert "COBADEFFXXX" in check.detail and "DEUTDEFF" in check.detail


@pytest.mark.parametrize("bic", ["BHFBDEFF", "BHFBDEFFXXX", "BHFBDEFF999"])
def test_same_institution_other_branch_is_a_warning(bic: str) -> None:
    """The directory gives a branch (BHFBDEFF100); the head office or its XXX is a warning."""
    check = consistency(bic, ODDO_IBAN)
    assert check.result == "warning" and check.code == "BIC_OTHER_BRANCH"
    assert "BHFBDEFF100" in check.detail


def test_branch_of_the_directorys_institution_is_a_warning() -> None:
    check = consistency("COBADEFF999", COMMERZBANK_IBAN)
    assert check.result == "warning" and check.code == "BIC_OTHER_BRANCH"


@pytest.mark.parametrize("iban", ["FR7641919094001234567890195", "RE0741919094001234567890195"])
def test_territory_bic_matches_the_parent_country(iban: str) -> None:
    """BNP Paribas Réunion: BIC country RE, French bank code 41919, FR or RE IBAN."""
    assert consistency("BNPARERX", iban).result == "pass"
    assert consistency("BNPARERXXXX", iban).result == "pass"
    assert consistency("BNPAFRPP", iban).code == "BIC_BANK_MISMATCH"  # another BIC8


def test_territory_outside_the_group_is_another_country() -> None:
    assert consistency("BNPARERX", COMMERZBANK_IBAN).code == "BIC_COUNTRY_MISMATCH"


def test_kosovo_bic_against_a_kosovo_iban() -> None:
    check = consistency("RAIFXKPR", "XK051212012345678906")
    assert check.result == "not_available"  # no directory for XK: country agrees, bank unknown
    assert consistency("RAIFATWW", "XK051212012345678906").code == "BIC_COUNTRY_MISMATCH"


def test_unknown_bank_code_is_not_available() -> None:
    check = consistency("DEUTDEFF", "DE37999999990123456789")
    assert check.result == "not_available"


def test_invalid_iban_or_bic_skips_consistency() -> None:
    assert consistency("COBADEFF", "DE88370400440532013000").result == "not_available"
    assert consistency("COBADEF", COMMERZBANK_IBAN).result == "not_available"
