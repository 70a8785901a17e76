"""Number formats of every kind: valid and invalid vectors, normal forms, kind inference."""

from __future__ import annotations

import pytest

from services.registry import kinds
from services.registry.formats import (
    cz_ico,
    de_handelsregister,
    gb_company_number,
    it_rea,
    nl_kvk,
    nl_vestigingsnummer,
    pl_krs,
)

# (country, kind): (valid as typed, its normal form, invalid, why invalid)
VECTORS: dict[tuple[str | None, str], tuple[str, str, str, str]] = {
    (None, "lei"): ("5299 00GR Z2BQ Y5ZM 9N49", "529900GRZ2BQY5ZM9N49",
                    "529900GRZ2BQY5ZM9N48", "checksum"),
    ("AT", "firmenbuchnummer"): ("FN 122119m", "122119m", "m123123", "format"),
    ("BE", "enterprise_number"): ("0403.019.261", "0403019261", "0403.019.262", "checksum"),
    ("BG", "eik"): ("175 074 752", "175074752", "175074751", "checksum"),
    ("CH", "uid"): ("CHE-100.155.212", "CHE100155212", "CHE-100.155.213", "checksum"),
    ("CZ", "ico"): ("25123891", "25123891", "25123890", "checksum"),
    ("DE", "handelsregisternummer"): ("Amtsgericht Aachen HRA 11223", "Aachen HRA 11223",
                                      "Atlantis HRB 1", "component"),
    ("DK", "cvr"): ("DK 13 58 56 28", "13585628", "13585627", "checksum"),
    ("EE", "registrikood"): ("10137025", "10137025", "10137026", "checksum"),
    ("ES", "cif"): ("J-99216582", "J99216582", "J99216583", "checksum"),
    ("ES", "nif"): ("54362315-K", "54362315K", "54362315Z", "checksum"),
    ("FI", "ytunnus"): ("2077474-0", "20774740", "2077474-1", "checksum"),
    ("FR", "siren"): ("552 008 443", "552008443", "552 008 442", "checksum"),
    ("FR", "siret"): ("732 829 320 00074", "73282932000074", "73282932000075", "checksum"),
    ("FR", "rcs"): ("RCS Nancy B 323 159 715", "RCS Nancy B 323159715",
                    "RCS Nancy B 323 159 716", "checksum"),
    ("GB", "company_number"): ("sc 123456", "SC123456", "XX123456", "component"),
    ("GR", "afm"): ("EL 094259216", "094259216", "123456781", "checksum"),
    ("HR", "oib"): ("HR33392005961", "33392005961", "33392005962", "checksum"),
    ("HU", "adoszam"): ("HU-12892312", "12892312", "12892313", "checksum"),
    ("IS", "kennitala"): ("450401-3150", "4504013150", "530575-0299", "checksum"),
    ("IT", "partita_iva"): ("IT 00743110157", "00743110157", "00743110158", "checksum"),
    ("IT", "rea"): ("REA MI 1234567", "MI-1234567", "XX-1234567", "component"),
    ("LI", "peid"): ("1234567", "1234567", "1234567890123", "length"),
    ("LV", "registracijas_numurs"): ("LV 4000 3521 600", "40003521600", "40003521601",
                                     "checksum"),
    ("NL", "kvk"): ("KvK 6959 9084", "69599084", "6959908", "length"),
    ("NL", "vestigingsnummer"): ("0000 1234 5678", "000012345678", "00001234567X", "format"),
    ("NO", "orgnr"): ("988 077 917", "988077917", "988 077 918", "checksum"),
    ("NO", "mva"): ("NO 995 525 828 MVA", "995525828MVA", "NO 995 525 829 MVA", "checksum"),
    ("PL", "regon"): ("192598184", "192598184", "192598183", "checksum"),
    ("PL", "nip"): ("856-734-62-15", "8567346215", "8567346216", "checksum"),
    ("PL", "krs"): ("KRS 0000012345", "0000012345", "12345678901", "length"),
    ("PT", "nipc"): ("PT 501 964 843", "501964843", "501964842", "checksum"),
    ("RO", "cui"): ("RO 18547290", "18547290", "18547291", "checksum"),
    ("RO", "onrc"): ("J52/750/2012", "J52/750/2012", "X52/750/2012", "component"),
    ("SE", "orgnr"): ("123456-7897", "1234567897", "1234567891", "checksum"),
    ("SI", "maticna"): ("5300231", "5300231", "5300232", "checksum"),
}


def test_every_kind_has_vectors() -> None:
    assert set(VECTORS) == set(kinds.KINDS)


@pytest.mark.parametrize("key", sorted(VECTORS, key=str))
def test_valid_vector(key: tuple[str | None, str]) -> None:
    typed, normal, _, _ = VECTORS[key]
    parsed = kinds.check_format(kinds.KINDS[key], typed)
    assert parsed.format_valid is True, parsed
    assert parsed.normalised == normal
    assert (parsed.kind, parsed.country) == (key[1], key[0])


@pytest.mark.parametrize("key", sorted(VECTORS, key=str))
def test_invalid_vector(key: tuple[str | None, str]) -> None:
    _, _, bad, reason = VECTORS[key]
    parsed = kinds.check_format(kinds.KINDS[key], bad)
    assert parsed.format_valid is False
    assert parsed.reason == reason
    assert parsed.detail


@pytest.mark.parametrize("key", sorted(VECTORS, key=str))
def test_kind_is_inferred_from_country_and_shape(key: tuple[str | None, str]) -> None:
    typed = VECTORS[key][0]
    assert kinds.resolve(key[0], None, typed).name == key[1]


@pytest.mark.parametrize("key", sorted(VECTORS, key=str))
def test_kind_given_explicitly(key: tuple[str | None, str]) -> None:
    assert kinds.resolve(key[0], key[1], VECTORS[key][0]) is kinds.KINDS[key]


def test_every_kind_names_the_origin_of_its_definition() -> None:
    for kind in kinds.KINDS.values():
        assert kind.origin.startswith(("python-stdnum stdnum.", "trace30 services.registry."))
        assert kind.description


def test_live_sources_cover_the_seven_registers() -> None:
    sources = {k.name: k.source for k in kinds.KINDS.values() if k.source}
    assert sources == {
        "lei": "gleif", "siren": "fr_recherche", "siret": "fr_recherche", "rcs": "fr_recherche",
        "orgnr": "no_brreg", "mva": "no_brreg", "company_number": "gb_companies_house",
        "cvr": "dk_cvr", "ico": "cz_ares", "krs": "pl_krs",
    }
    assert kinds.KINDS[("SE", "orgnr")].source is None  # Sweden's orgnr shares NO's kind name


@pytest.mark.parametrize(
    ("country", "kind", "number", "field", "words"),
    [
        ("FR", "krs", "123", "kind", "not a kind of FR"),
        ("FR", "nonsense", "123", "kind", "Unknown kind"),
        (None, "orgnr", "988077917", "country_code", "several countries"),
        (None, None, "988077917", "country_code", "required unless the number is a LEI"),
        ("PL", None, "12345678901", "kind", None),  # fits no kind of PL: not a KindError
    ],
)
def test_resolve_errors(country: str | None, kind: str | None, number: str, field: str,
                        words: str | None) -> None:
    if words is None:
        with pytest.raises(kinds.NoKindFits):
            kinds.resolve(country, kind, number)
        return
    with pytest.raises(kinds.KindError) as info:
        kinds.resolve(country, kind, number)
    assert info.value.field == field
    assert words in info.value.message


def test_a_number_fitting_several_kinds_needs_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    # No two kinds of one country overlap today; a country whose kinds would must say so.
    fr = kinds.kinds_of("FR")
    lookalike = kinds.Kind("siren_bis", "FR", fr[0].validate, fr[0].shape, "test", "test")
    monkeypatch.setitem(kinds._BY_COUNTRY, "FR", [*fr, lookalike])
    with pytest.raises(kinds.KindError) as info:
        kinds.resolve("FR", None, "552008443")
    assert info.value.field == "kind"
    assert "siren, siren_bis" in info.value.message


def test_resolve_infers_where_unambiguous() -> None:
    assert kinds.resolve(None, "siren", "552008443").country == "FR"  # one country has siren
    assert kinds.resolve("el", None, "094259216").name == "afm"  # EL is Greece
    assert kinds.resolve("UK", None, "SC123456").name == "company_number"
    assert kinds.resolve("DE", None, "529900GRZ2BQY5ZM9N49").name == "lei"  # with a country
    assert kinds.resolve("DE", None, "Fürth HRB 13085").name == "handelsregisternummer"
    assert kinds.resolve("LT", None, "529900GRZ2BQY5ZM9N49").name == "lei"
    assert kinds.resolve("LT", None, "123456789") is None  # no kind of Lithuania is known
    assert kinds.resolve("PL", None, "0000012345").name == "krs"
    assert kinds.resolve("PL", None, "12345").name == "krs"
    assert kinds.resolve("PL", None, "192598184").name == "regon"
    assert kinds.resolve("PL", None, "8567346215").name == "nip"
    assert kinds.resolve("NO", None, "995525828MVA").name == "mva"


def test_register_court_given_apart() -> None:
    kind = kinds.KINDS[("DE", "handelsregisternummer")]
    parsed = kinds.check_format(kind, "HRB 13085", register="Amtsgericht Fürth")
    assert (parsed.format_valid, parsed.normalised) == (True, "Fürth HRB 13085")
    assert kinds.check_format(kind, "HRB 13085").reason == "format"  # the court is missing


@pytest.mark.parametrize(
    ("module", "valid", "invalid"),
    [
        (gb_company_number, ["00006402", "6402", "OC300001", "NI012345", "R0001234", "SO301234",
                             "LP012345", "FC031362"],
         ["", "XX123456", "SC12345", "SC1234567", "SCABCDEF", "00000000", "123456789"]),
        (nl_kvk, ["69599084", "KvK-nummer 69599084", "0123 4567"],
         ["", "6959908", "695990840", "6959908A", "00000000"]),
        (nl_vestigingsnummer, ["000012345678"], ["00001234567", "0000123456789", "000000000000"]),
        (cz_ico, ["25123891", "IČO 251 23 891", "CZ25123891", "6947", "00006947", "IČ: 27074358"],
         ["", "25123890", "251238911", "0000000", "2512389A", "CZ 1234567890"]),
        (pl_krs, ["0000012345", "12345", "KRS 0000012345"],
         ["", "12345678901", "0000000000", "KRS 12A45"]),
        (it_rea, ["MI-1234567", "RM 1", "REA TO/999999", "CI-12345"],
         ["MI-", "MI-12345678", "XX-1234567", "1234567", "MI-0"]),
        (de_handelsregister,
         ["Fürth HRB 13085", "HRB 13085 Fürth", "Berlin (Charlottenburg) HRB 1"],
         ["HRB 13085", "Fürth XYZ 13085", "Atlantis HRB 13085"]),
    ],
)
def test_own_formats(module: object, valid: list[str], invalid: list[str]) -> None:
    for number in valid:
        assert module.is_valid(number), number  # type: ignore[attr-defined]
    for number in invalid:
        assert not module.is_valid(number), number  # type: ignore[attr-defined]


def test_gb_prefixes_are_companies_house_enumerations() -> None:
    assert {"SC", "NI", "OC", "SO", "NC", "LP", "SL", "NL", "FC", "SF", "NF", "R0"} <= set(
        gb_company_number.PREFIXES
    )
    assert gb_company_number.body_kind("SL012345") == "limited-partnership-scotland"


def test_mask_keeps_only_the_end() -> None:
    assert kinds.mask("54362315K") == "******15K"
    assert kinds.mask("12") == "12"
