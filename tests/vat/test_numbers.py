"""Local VAT number checks for every member state and Northern Ireland."""

from __future__ import annotations

import pytest

from services.vat import numbers

# One checksum-valid number and one with a wrong check digit per VIES country code.
VECTORS = {
    "AT": ("ATU13585627", "ATU13585626"),
    "BE": ("BE0428759497", "BE0431150351"),
    "BG": ("BG175074752", "BG175074751"),
    "CY": ("CY10259033P", "CY10259033Z"),
    "CZ": ("CZ25123891", "CZ25123890"),
    "DE": ("DE136695976", "DE136695978"),
    "DK": ("DK13585628", "DK13585627"),
    "EE": ("EE100594102", "EE100594103"),
    "EL": ("EL094259216", "EL123456781"),
    "ES": ("ESB64717838", "ESB64717839"),
    "FI": ("FI20774740", "FI20774741"),
    "FR": ("FR23334175221", "FR84323140391"),
    "HR": ("HR33392005961", "HR33392005962"),
    "HU": ("HU12892312", "HU12892313"),
    "IE": ("IE6433435F", "IE6433435E"),
    "IT": ("IT00743110157", "IT00743110158"),
    "LT": ("LT119511515", "LT100001919018"),
    "LU": ("LU15027442", "LU15027443"),
    "LV": ("LV40003521600", "LV40003521601"),
    "MT": ("MT11679112", "MT11679113"),
    "NL": ("NL004495445B01", "NL123456789B90"),
    "PL": ("PL8567346215", "PL8567346216"),
    "PT": ("PT501964843", "PT501964842"),
    "RO": ("RO18547290", "RO18547291"),
    "SE": ("SE123456789701", "SE123456789101"),
    "SI": ("SI50223054", "SI50223055"),
    "SK": ("SK2022749619", "SK2022749618"),
    "XI": ("XI980780684", "XI802311781"),
}


def test_vectors_cover_every_vies_country() -> None:
    assert set(VECTORS) == numbers.VIES_COUNTRIES
    assert len(VECTORS) == 28


@pytest.mark.parametrize("cc", sorted(VECTORS))
def test_valid_number(cc: str) -> None:
    parsed = numbers.parse(VECTORS[cc][0])
    assert parsed.format_valid, parsed.detail
    assert parsed.country_code == cc
    assert parsed.vat_number == VECTORS[cc][0]
    assert parsed.reason is None


@pytest.mark.parametrize("cc", sorted(VECTORS))
def test_wrong_check_digit(cc: str) -> None:
    parsed = numbers.parse(VECTORS[cc][1])
    assert not parsed.format_valid
    assert parsed.reason in {"checksum", "format"}
    assert parsed.detail


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("de 136.695.976", "DE136695976"),
        ("  DE-136-695-976 ", "DE136695976"),
        ("gr094259216", "EL094259216"),
        ("el 094 259 216", "EL094259216"),
        ("xi980780684", "XI980780684"),
        ("nl004495445b01", "NL004495445B01"),
    ],
)
def test_clean_up(raw: str, expected: str) -> None:
    parsed = numbers.parse(raw)
    assert parsed.format_valid
    assert parsed.vat_number == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("136695976", "format"),  # no country prefix
        ("GB980780685", "checksum"),  # GB: HMRC's check digits
        ("GB12345", "format"),
        ("CHE-107.185.563", "checksum"),  # CH: the UID's check digit
        ("NO912345603MVA", "checksum"),  # NO: the organisation number's check digit
        ("US", "format"),  # a prefix and nothing else
        ("DE13669597", "format"),  # too short
        ("DEABCDEFGHI", "format"),
        ("DE136695977", "checksum"),
        ("", "format"),
    ],
)
def test_refused_locally(raw: str, reason: str) -> None:
    parsed = numbers.parse(raw)
    assert not parsed.format_valid
    assert parsed.reason == reason


@pytest.mark.parametrize("test_number", sorted(numbers.VIES_TEST_NUMBERS))
def test_test_numbers_only_in_sandbox(test_number: str) -> None:
    assert numbers.parse("DE" + test_number, sandbox=True).test_number
    outside = numbers.parse("DE" + test_number, sandbox=False)
    assert not outside.format_valid
    assert not outside.test_number


def test_mask_keeps_prefix_and_tail() -> None:
    assert numbers.mask("NL004495445B01") == "NL*********B01"
    assert "4495445" not in numbers.mask("NL004495445B01")


@pytest.mark.parametrize(
    ("raw", "scheme", "normalised"),
    [
        ("GB980780684", numbers.GB, "GB980780684"),  # left VIES in 2021: HMRC
        ("gb 980 7806 84", numbers.GB, "GB980780684"),
        ("GB980780684001", numbers.GB, "GB980780684001"),  # a 12-digit branch number
        ("CHE-116.281.704 MWST", numbers.CH, "CHE116281704"),
        ("che116281704tva", numbers.CH, "CHE116281704"),
        ("CH116281704", numbers.CH, "CHE116281704"),
        ("NO 912 345 602 MVA", numbers.NO, "NO912345602MVA"),
        ("NO912345602", numbers.NO, "NO912345602MVA"),
        ("US123456789", numbers.OTHER, "US123456789"),  # no online source: unverifiable
        ("AU51824753556", numbers.OTHER, "AU51824753556"),
        ("XI980780684", numbers.VIES, "XI980780684"),  # Northern Ireland stays in VIES
    ],
)
def test_numbers_outside_vies_are_not_refused_for_their_prefix(
        raw: str, scheme: str, normalised: str) -> None:
    parsed = numbers.parse(raw)
    assert parsed.format_valid, parsed.detail
    assert parsed.scheme == scheme
    assert parsed.vat_number == normalised
