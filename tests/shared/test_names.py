"""The shared name normaliser: legal forms, transliteration, scores and verdicts."""

from __future__ import annotations

import pytest

from shared import names
from shared.names import CLOSE_THRESHOLD, MATCH_THRESHOLD, NameMatch, compare, normalise

# (declared name, registered name, country, expected verdict)
PAIRS = [
    # the same company, legal form spelled out, abbreviated or missing
    ("ACME GmbH", "Acme Gesellschaft mit beschränkter Haftung", "DE", "match"),
    ("Société Générale S.A.", "SOCIETE GENERALE", "FR", "match"),
    ("L'Oréal S.A.", "LOREAL SA", "FR", "match"),
    ("Boulangerie Martin SARL", "BOULANGERIE MARTIN S.A.R.L.", "FR", "match"),
    ("Boulangerie Martin SARL", "Boulangerie Martin société à responsabilité limitée", "FR",
     "match"),
    ("Müller & Söhne GmbH", "Mueller und Soehne GmbH", "DE", "match"),
    ("Straße der Händler GmbH", "Strasse der Haendler GmbH", "DE", "match"),
    ("Krüger GmbH & Co. KG", "Krueger GmbH u. Co. KG", "DE", "match"),
    ("Bäckerei Schmidt e.K.", "Baeckerei Schmidt", "DE", "match"),
    ("Red Bull GmbH", "RED BULL Gesellschaft m.b.H.", "AT", "match"),
    ("Zalando SE", "ZALANDO SE", None, "match"),
    ("Equinor ASA", "EQUINOR ASA", "NO", "match"),
    ("Hansen Consulting ENK", "Hansen Consulting", "NO", "match"),
    ("Ørsted A/S", "ORSTED AS", "DK", "match"),
    ("Bakkerij Jansen B.V.", "Bakkerij Jansen besloten vennootschap", "NL", "match"),
    ("Bakkerij Jansen B.V. i.L.", "BAKKERIJ JANSEN BV", "NL", "match"),
    ("Stichting Het Groene Hart", "Het Groene Hart", "NL", "match"),
    ("Brouwerij Het Anker NV", "Brouwerij Het Anker SA", "BE", "match"),
    ("Firma Kowalski sp. z o.o.", "FIRMA KOWALSKI SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ", "PL",
     "match"),
    ("Pizzeria Roma S.r.l.", "PIZZERIA ROMA SOCIETA' A RESPONSABILITA' LIMITATA", "IT", "match"),
    ("Rossi S.p.A.", "ROSSI SPA", "IT", "match"),
    ("Telefónica, S.A.", "TELEFONICA SA", "ES", "match"),
    ("Industrias López S.L.", "Industrias Lopez Sociedad Limitada", "ES", "match"),
    ("Vinhos do Porto Lda", "Vinhos do Porto Limitada", "PT", "match"),
    ("Acme Trading Ltd", "ACME TRADING LIMITED", "GB", "match"),
    ("Tesco PLC", "TESCO PUBLIC LIMITED COMPANY", "GB", "match"),
    ("Smith & Sons Ltd", "Smith and Sons Limited", "GB", "match"),
    ("The Acme Company Ltd", "ACME COMPANY LIMITED", "GB", "match"),
    ("Nokia Oyj", "Nokia Abp", "FI", "match"),
    ("Volvo AB", "Aktiebolaget Volvo", "SE", "match"),
    ("Volvo AB (publ)", "AB Volvo", "SE", "match"),
    ("Eesti Energia AS", "EESTI ENERGIA AKTSIASELTS", "EE", "match"),
    ("Kala OÜ", "Kala osaühing", "EE", "match"),
    ("ΑΚΜΕ Α.Ε.", "AKME ANONYMI ETAIREIA", "GR", "match"),  # noqa: RUF001
    ("Балкан ЕООД", "BALKAN EOOD", "BG", "match"),
    ("Škoda Auto a.s.", "SKODA AUTO AKCIOVA SPOLECNOST", "CZ", "match"),
    ("MOL Nyrt.", "MOL Nyilvánosan Működő Részvénytársaság", "HU", "match"),
    ("Alpha Beta Gamma SRL", "Gamma Beta Alpha S.R.L.", "RO", "match"),
    ("Coca-Cola HBC AG", "COCA COLA HBC AG", "CH", "match"),
    ("Apple Retail Germany B.V. & Co. KG", "Apple Retail Germany", "DE", "match"),
    ("DeutscheBahn AG", "Deutsche Bahn AG", "DE", "match"),
    ("Boulangerie Dupont SARL", "Boulangerie Dupond SARL", "FR", "match"),  # one-letter typo
    # same name, another legal form: capped at close
    ("ACME GmbH", "ACME AG", "DE", "close"),
    ("Carrefour SAS", "Carrefour SA", "FR", "close"),
    ("Nordisk Fisk ApS", "Nordisk Fisk A/S", "DK", "close"),
    ("Acme Trading Ltd", "Acme Trading PLC", "GB", "close"),
    ("Krüger GmbH & Co. KG", "Krüger GmbH", "DE", "close"),
    # similar names: a human should look
    ("Deutsche Bank AG", "Deutsche Bahn AG", "DE", "close"),
    ("Schmidt Logistik GmbH", "Schmidt Logistics GmbH", "DE", "close"),
    ("Global Imports Ltd", "Global Exports Ltd", "GB", "close"),
    ("Philips N.V.", "Koninklijke Philips N.V.", "NL", "close"),
    ("Acme Trading Ltd", "Acme Trading International Ltd", "GB", "close"),
    # other companies
    ("Acme Ltd", "Apex Ltd", "GB", "no_match"),
    ("Acme Ltd", "Zenith Logistics Ltd", "GB", "no_match"),
    ("Boulangerie Martin SARL", "Garage Dupuis SARL", "FR", "no_match"),
    ("Nordisk Fisk AS", "Bergen Shipping AS", "NO", "no_match"),
    ("Pizzeria Roma S.r.l.", "Trattoria Napoli S.r.l.", "IT", "no_match"),
    ("Müller GmbH", "Schneider GmbH", "DE", "no_match"),
    ("Acme GmbH", "GmbH", "DE", "no_match"),  # a bare legal form is no name
    ("", "Acme Ltd", "GB", "no_match"),
]


@pytest.mark.parametrize(("a", "b", "country", "verdict"), PAIRS)
def test_pair_verdict(a: str, b: str, country: str | None, verdict: str) -> None:
    result = compare(a, b, country)
    assert result.verdict == verdict, result
    # the comparison is symmetric
    assert compare(b, a, country).verdict == verdict


def test_there_are_at_least_forty_pairs_of_each_kind() -> None:
    verdicts = [p[3] for p in PAIRS]
    assert len(PAIRS) >= 40
    assert {"match", "close", "no_match"} <= set(verdicts)
    assert len({p[2] for p in PAIRS}) >= 20  # countries


@pytest.mark.parametrize(
    ("name", "country", "text", "form"),
    [
        ("ACME GmbH", "DE", "acme", "GMBH"),
        ("Acme Vertriebsgesellschaft mbH", "DE", "acme vertriebsgesellschaft", "GMBH"),
        ("Beta UG (haftungsbeschränkt)", "DE", "beta", "UG"),
        ("Müller & Söhne GmbH & Co. KG", "DE", "muller and sohne", "GMBH_CO_KG"),
        ("Apple Retail Germany B.V. & Co. KG", "DE", "apple retail germany", "BV_CO_KG"),
        ("Société Générale S.A.", "FR", "societe generale", "SA"),
        ("Dupont S.à r.l.", "LU", "dupont", "SARL"),
        ("Brouwerij NV", "BE", "brouwerij", "SA"),  # NV and SA are one Belgian form
        ("Brouwerij NV", None, "brouwerij", "NV"),
        ("Volvo AB", None, "volvo", "AB"),  # the Swedish form, not Finland's Ab
        ("Example Oy Ab", "FI", "example oy", "OY"),
        ("Kowalski sp. z o.o.", "PL", "kowalski", "SPZOO"),
        ("ΑΚΜΕ Α.Ε.", "EL", "akme", "AE"),  # noqa: RUF001
        ("Acme Ltd", "DE", "acme", "LTD"),  # an English form in a German register
        ("Acme Trading", "GB", "acme trading", None),
        ("A.B.C. Trading", None, "abc trading", None),
        ("Ltd", "GB", "ltd", None),
    ],
)
def test_normalise(name: str, country: str | None, text: str, form: str | None) -> None:
    result = normalise(name, country)
    assert (result.original, result.text, result.legal_form) == (name, text, form)


def test_the_country_limits_which_forms_apply() -> None:
    # "AS" is a Norwegian form but not a Bulgarian one ("AD" is)
    assert normalise("Nordisk Fisk AS", "NO").legal_form == "AS"
    assert normalise("Balkan AD", "BG").legal_form == "AD"
    assert normalise("Lemon Aid AD", "GB").legal_form == "AD"  # falls back to the whole table
    assert normalise("Example AB", "SE").legal_form == "AB"
    assert normalise("Example AB", "FI").legal_form == "OY"  # Ab is the Swedish name of an Oy


def test_scores_and_thresholds() -> None:
    assert 0 < CLOSE_THRESHOLD < MATCH_THRESHOLD < 1
    same = compare("Acme GmbH", "ACME GMBH", "DE")
    assert same == NameMatch(1.0, "match", "acme", "acme", ("GMBH", "GMBH"))
    # a legal-form mismatch keeps the score of the names but caps the verdict
    capped = compare("Acme GmbH", "Acme AG", "DE")
    assert (capped.score, capped.verdict, capped.legal_forms) == (1.0, "close", ("GMBH", "AG"))
    # a form on one side only changes nothing
    assert compare("Acme", "Acme AG", "DE").verdict == "match"
    for a, b, country, _ in PAIRS:
        result = compare(a, b, country)
        assert 0.0 <= result.score <= 1.0
        if result.legal_forms[0] == result.legal_forms[1] or None in result.legal_forms:
            expected = (
                "match" if result.score >= MATCH_THRESHOLD
                else "close" if result.score >= CLOSE_THRESHOLD else "no_match"
            )
            assert result.verdict == expected


def test_contained_names_are_close_never_a_match() -> None:
    result = compare("Acme", "Acme Holding International Group")
    assert result.score == names.CONTAINED_WEIGHT
    assert result.verdict == "close"
