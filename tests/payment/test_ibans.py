"""IBAN clean-up and checks (services.payment.ibans), with the SWIFT registry's examples."""

from __future__ import annotations

import csv
import random
import sys
import threading
import warnings
from pathlib import Path

import pytest
from schwifty import IBAN, registry
from schwifty.checksum import algorithms

from services.payment import ibans

EXAMPLES_FILE = Path(__file__).with_name("swift_iban_examples.csv")
#: Listed by the SWIFT registry under their parent country, without an example of their own.
TERRITORIES = frozenset("AX BL GF GG GP IM JE MF MQ NC PF PM RE TF WF YT".split())


def load_examples() -> dict[str, str]:
    with EXAMPLES_FILE.open(encoding="utf-8") as f:
        rows = [line for line in f if not line.startswith("#")]
    return {row["country"]: row["example"] for row in csv.DictReader(rows)}


EXAMPLES = load_examples()


def fullwidth(text: str) -> str:
    """``text`` with its ASCII letters and digits as their full-width forms (U+FF10...)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def results(r: ibans.IbanResult) -> dict[str, str]:
    return {c.name: c.result for c in r.checks}


# --- the registry's examples ---------------------------------------------------------------


def test_examples_cover_every_registry_country_schwifty_knows() -> None:
    known = {c for c in registry.get_countries() if c}  # bank directories: a subset
    specs = {c for c in _iban_countries() if not registry.get_iban_spec(c).aspirational}
    assert set(EXAMPLES) == specs - TERRITORIES
    assert len(EXAMPLES) == 89
    assert known <= specs  # every bank directory is of an IBAN country
    assert all(iban[:2] == cc for cc, iban in EXAMPLES.items())


def _iban_countries() -> list[str]:
    countries = []
    for a in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
        for b in "ABCDEFGHIJKLMNOPQRSTUVWXYZ":
            if ibans.spec(a + b) is not None:
                countries.append(a + b)
    return countries


@pytest.mark.parametrize("country", sorted(EXAMPLES))
def test_registry_example_is_valid(country: str) -> None:
    r = ibans.check(EXAMPLES[country])
    assert r.valid, r.errors
    assert r.well_formed and r.country_code == country and r.text == EXAMPLES[country]
    got = results(r)
    assert got["length"] == got["format"] == got["checksum"] == "pass"
    assert got["national_check_digits"] in ("pass", "not_available")
    assert got["bank_code"] in ("pass", "warning", "not_available")


@pytest.mark.parametrize("country", sorted(EXAMPLES))
def test_national_check_never_passes_without_an_algorithm(country: str) -> None:
    """Where schwifty has no algorithm the check says so; it passes only when it ran."""
    r = ibans.check(EXAMPLES[country])
    national = next(c for c in r.checks if c.name == "national_check_digits")
    has_algorithm = any(key.startswith(country + ":") for key in algorithms)
    if national.result == "pass":
        assert has_algorithm
    else:
        assert national.result == "not_available"
        assert "Not verified" in national.detail and "not a pass" in national.detail


@pytest.mark.parametrize("country", ["SE", "HU", "AL", "FO", "GL", "BI", "DJ"])
def test_declared_but_unverifiable_digits_are_not_available_without_a_warning(
    country: str,
) -> None:
    """schwifty warns (NationalChecksumNotVerified) for these; trace30 reports not_available."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = ibans.check(EXAMPLES[country])
    assert results(r)["national_check_digits"] == "not_available"
    with pytest.warns(UserWarning, match="not verified"):
        IBAN(EXAMPLES[country], validate_bban=True)


def test_countries_without_national_digits_are_not_available() -> None:
    for country in ("GB", "NL", "AT", "CH", "LU", "IE"):
        r = ibans.check(EXAMPLES[country])
        assert results(r)["national_check_digits"] == "not_available", country


def test_german_check_digits_need_the_bank() -> None:
    r = ibans.check("DE37999999990123456789")  # bank code 99999999 is in no directory
    assert r.valid
    got = results(r)
    assert got["national_check_digits"] == "not_available"
    assert got["bank_code"] == "warning" and r.warnings == ["BANK_CODE_UNKNOWN"]
    national = next(c for c in r.checks if c.name == "national_check_digits")
    assert "depends on the bank" in national.detail


# --- clean-up ------------------------------------------------------------------------------

CLEAN = "DE89370400440532013000"


@pytest.mark.parametrize("raw", [
    "DE89 3704 0044 0532 0130 00",
    "de89370400440532013000",
    "  De89 3704 0044 0532 0130 00\n",
    "IBAN DE89 3704 0044 0532 0130 00",
    "iban: DE89370400440532013000",
    "IBAN:DE89370400440532013000",
    "DE89\u200b3704\u200c0044\u200d0532\u20600130\ufeff00",  # zero-width characters
    "\u00adDE89370400440532013000\u200e",  # soft hyphen, left-to-right mark
    fullwidth("DE89 3704 0044 0532 0130 00"),
    fullwidth("de89") + "\u3000" + fullwidth("370400440532013000"),  # ideographic space
    "DE89\u00a03704\u202f0044\u20090532\t0130\r\n00",  # no-break, thin and other spaces
])
def test_cleanup_normalises(raw: str) -> None:
    r = ibans.check(raw)
    assert r.text == CLEAN
    assert r.valid and r.well_formed


@pytest.mark.parametrize(("raw", "where"), [
    ("D\u0415" + CLEAN[2:], "CYRILLIC CAPITAL LETTER IE"),  # looks like E
    ("\u0412E" + CLEAN[2:], "CYRILLIC CAPITAL LETTER VE"),  # a Cyrillic letter in the country
    ("DE89 37\u039f4 0044 0532 0130 00", "GREEK CAPITAL LETTER OMICRON"),  # for a zero
    ("DE89 3704 0044 0532 0130 0\u0660", "ARABIC-INDIC DIGIT ZERO"),
    ("de89 3704 0044 0532 0130 0\u043e", "CYRILLIC SMALL LETTER O"),
])
def test_lookalike_letters_are_refused_with_their_own_reason(raw: str, where: str) -> None:
    r = ibans.check(raw)
    assert not r.valid and not r.well_formed
    assert r.errors == ["IBAN_CONFUSABLE_CHARACTERS"]
    fmt = next(c for c in r.checks if c.name == "format")
    assert fmt.result == "fail" and where in fmt.detail
    assert {c.result for c in r.checks if c.name != "format"} == {"not_available"}


@pytest.mark.parametrize("raw", ["DE89-3704-0044-0532-0130-00", "DE89/370400440532013000",
                                 "DÉ89370400440532013000", "DE89.3704.0044.0532.0130.00"])
def test_other_characters_are_invalid(raw: str) -> None:
    r = ibans.check(raw)
    assert r.errors == ["IBAN_INVALID_CHARACTERS"]


def test_cleanup_does_not_transliterate() -> None:
    """Greek and Cyrillic letters are never turned into Latin ones (they could be typos)."""
    assert ibans.clean("\u0391\u0392").text == "\u0391\u0392"
    assert ibans.clean("\u0391\u0392").confusables[0][0] == 1


# --- each failure class ---------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "code", "failed"), [
    ("DE89 3704 0044 0532 0130 0", "IBAN_LENGTH", "length"),
    ("DE89 3704 0044 0532 0130 000", "IBAN_LENGTH", "length"),
    ("GB29 NWBK 6016 1331 9268 1", "IBAN_LENGTH", "length"),
    ("XX89 3704 0044 0532 0130 00", "IBAN_COUNTRY_UNKNOWN", "format"),
    ("US64 SVBK US6S 3300 9673 8637", "IBAN_COUNTRY_UNKNOWN", "format"),
    ("DE89 3704 0044 0532 0130 0A", "IBAN_FORMAT", "format"),
    ("GB29 1WBK 6016 1331 9268 19", "IBAN_FORMAT", "format"),
    ("1234 5678", "IBAN_FORMAT", "format"),
    ("DEXX370400440532013000", "IBAN_FORMAT", "format"),
    ("IBAN", "IBAN_FORMAT", "format"),
    ("DE88 3704 0044 0532 0130 00", "IBAN_CHECKSUM", "checksum"),
    ("DE89 3704 0044 0532 0103 00", "IBAN_CHECKSUM", "checksum"),  # swapped digits
    ("GB29 NWBK 6016 1331 9268 18", "IBAN_CHECKSUM", "checksum"),
])
def test_failure_classes(raw: str, code: str, failed: str) -> None:
    r = ibans.check(raw)
    assert not r.valid
    assert r.errors == [code]
    assert results(r)[failed] == "fail"
    after = ["length", "format", "checksum", "national_check_digits", "bank_code"]
    later = after[after.index(failed) + 1:] if failed != "format" else after[2:]
    assert all(results(r)[name] == "not_available" for name in later)


def test_format_failure_points_at_the_character() -> None:
    r = ibans.check("GB29 1WBK 6016 1331 9268 19")
    fmt = next(c for c in r.checks if c.name == "format")
    assert "4 capital letters, 6 digits, 8 digits" in fmt.detail
    assert "Character 5 should be a capital letter" in fmt.detail


def test_length_failure_says_the_expected_length() -> None:
    r = ibans.check("DE89 3704 0044 0532 0130 0")
    assert "IBANs of DE have 22 characters; this one has 21" in r.checks[0].detail


# A digit of the part the national check covers changed, the IBAN check digits recomputed:
# only the national check can catch these.
NATIONAL_FAILURES = {
    "DE": "DE08370400440532013100", "BE": "BE84539007547134", "FR": "FR3020041010050500013M02706",
    "ES": "ES1021000418450200051432", "IT": "IT76X0542811101000000123556",
    "NO": "NO4686011117047", "FI": "FI3712345600000885", "PT": "PT66000201231234567890254",
    "EE": "EE542200221020145785", "CZ": "CZ8108000000192000145499",
    "SK": "SK4712000000198742637641", "SI": "SI72263300012039186",
    "IS": "IS300159260076545510730439", "MC": "MC7411222000010123456789130",
    "SM": "SM05U0322509800000000270200", "ME": "ME75505000012345678051",
    "MK": "MK57250120000058084", "RS": "RS51260005601001611479", "BA": "BA551290079401028594",
    "TN": "TN7510006035183598478931", "TL": "TL540080012345678910257",
    "MR": "MR2900020001010000123456853",
}


@pytest.mark.parametrize("country", sorted(NATIONAL_FAILURES))
def test_national_check_digits_fail(country: str) -> None:
    r = ibans.check(NATIONAL_FAILURES[country])
    got = results(r)
    assert got["checksum"] == "pass"  # the IBAN check digits alone would accept it
    assert got["national_check_digits"] == "fail"
    assert r.errors == ["IBAN_NATIONAL_CHECKSUM"] and not r.valid and r.well_formed
    assert IBAN(NATIONAL_FAILURES[country]).is_valid  # schwifty without BBAN validation agrees


def test_polish_national_check_covers_the_bank_code() -> None:
    bban = "109010150000071219812874"  # 10901014 -> 10901015: the bank code's check digit
    r = ibans.check(str(IBAN.from_bban("PL", bban)))
    assert r.errors == ["IBAN_NATIONAL_CHECKSUM"]


# --- territories and aspirational formats ---------------------------------------------------


@pytest.mark.parametrize("territory", ["GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF", "NC",
                                       "PF", "WF", "TF"])
def test_french_territories_use_the_french_rules(territory: str) -> None:
    iban = str(IBAN.from_bban(territory, EXAMPLES["FR"][4:]))
    r = ibans.check(iban)
    assert r.valid
    got = results(r)
    assert got["national_check_digits"] == "pass" and got["bank_code"] == "pass"
    assert "(the rules of FR)" in r.checks[3].detail
    bad = ibans.check(str(IBAN.from_bban(territory, NATIONAL_FAILURES["FR"][4:])))
    assert bad.errors == ["IBAN_NATIONAL_CHECKSUM"]


def test_aland_uses_the_finnish_rules() -> None:
    r = ibans.check(str(IBAN.from_bban("AX", EXAMPLES["FI"][4:])))
    assert results(r)["national_check_digits"] == "pass"


def test_crown_dependencies_use_the_british_directory() -> None:
    r = ibans.check(str(IBAN.from_bban("JE", EXAMPLES["GB"][4:])))
    assert r.valid and results(r)["bank_code"] == "pass"
    assert r.bank is not None and r.bank.bic == "NWBKGB2LXXX"


def test_aspirational_format_is_a_warning() -> None:
    r = ibans.check("AO28091390996030824628194")
    assert r.valid and r.warnings == ["IBAN_COUNTRY_ASPIRATIONAL"]
    assert results(r)["format"] == "warning"


# --- bank directory -------------------------------------------------------------------------


def test_bank_from_the_directory() -> None:
    r = ibans.check(CLEAN)
    assert r.bank is not None
    assert (r.bank.name, r.bank.bic, r.bank_code) == ("Commerzbank", "COBADEFFXXX", "37040044")
    assert "COBADEFFXXX" in r.bank.bics


def test_no_directory_is_not_available() -> None:
    r = ibans.check(EXAMPLES["JO"])
    bank = next(c for c in r.checks if c.name == "bank_code")
    assert bank.result == "not_available" and "No bank directory" in bank.detail


def test_load_directory_counts_banks() -> None:
    assert ibans.load_directory() > 10000


def test_details_never_hold_the_iban() -> None:
    for raw in [CLEAN, *NATIONAL_FAILURES.values(), "DE88370400440532013000",
                "DE8937040044053201300", "D\u0415" + CLEAN[2:]]:
        r = ibans.check(raw)
        for c in r.checks:
            assert ibans.compact(raw) not in c.detail
            assert ibans.compact(raw)[4:] not in c.detail


# --- agreement with schwifty ----------------------------------------------------------------


def _batch(size: int = 1500) -> list[str]:
    rnd = random.Random(4)  # noqa: S311 - a reproducible batch
    countries = sorted(EXAMPLES)
    return [str(IBAN.random(rnd.choice(countries), random=rnd, use_registry=False))
            for _ in range(size)]


def test_checksum_agrees_with_schwifty_on_typos() -> None:
    """trace30 computes mod 97-10 itself (faster); on every one-digit typo it must agree."""
    rnd = random.Random(5)  # noqa: S311 - reproducible typos
    compared = 0
    for iban in _batch():
        pos = rnd.randrange(2, len(iban))
        if not iban[pos].isdigit():
            continue
        typo = iban[:pos] + str((int(iban[pos]) + rnd.randrange(1, 10)) % 10) + iban[pos + 1:]
        ours = results(ibans.check(typo))
        if ours["format"] != "pass":
            continue  # e.g. a check digit field that must be 0: not the checksum's to judge
        theirs = IBAN(typo, allow_invalid=True).is_valid
        assert (ours["checksum"] == "pass") is theirs, typo[:2]
        compared += 1
    assert compared > 1000


def test_verdicts_agree_with_schwifty_where_it_has_an_algorithm() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # schwifty's NationalChecksumNotVerified
        for iban in [*_batch(600), *NATIONAL_FAILURES.values()]:
            r = ibans.check(iban)
            if results(r)["national_check_digits"] == "not_available":
                continue
            try:
                IBAN(iban, validate_bban=True)
                theirs = True
            except ValueError:
                theirs = False
            assert r.valid is theirs, iban[:2]


def test_schwifty_passes_silently_where_trace30_says_not_verified() -> None:
    """The motivating case: a German IBAN whose bank is unknown has no check-digit method."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # schwifty does not even warn here
        assert IBAN("DE37999999990123456789", validate_bban=True).is_valid
    assert results(ibans.check("DE37999999990123456789"))["national_check_digits"] == \
        "not_available"


def test_concurrent_national_checks_are_consistent() -> None:
    """schwifty's German method 16 keeps its last remainder on a shared object and reads it
    back; without trace30's lock, threads switching often get wrong verdicts (seen here: a few
    in 50,000 checks)."""
    # Hanseatic Bank (20120700) checks with method 16: the first account is valid only through
    # the method's remainder-1 rule, the second through the ordinary check digit.
    cases = {"DE11201207005152946199": True, "DE92201207005178128657": True,
             NATIONAL_FAILURES["DE"]: False}
    assert {iban: ibans.check(iban).valid for iban in cases} == cases
    wrong: list[str] = []

    def work() -> None:
        for _ in range(2000):
            for iban, expected in cases.items():
                if ibans.check(iban).valid is not expected:
                    wrong.append(iban)

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        threads = [threading.Thread(target=work) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not wrong
