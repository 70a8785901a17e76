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


# -- addresses ---------------------------------------------------------------------------------

DECLARED = {"street": "4 rue du Four", "postcode": "75006", "city": "Paris"}

# (source as compare_address takes it, expected (postcode, city, street, verdict))
ADDRESSES = [
    # one line of text: VIES, a register's joined address
    ({"text": "4 RUE DU FOUR\n75006 PARIS"}, ("match", "match", None, "match")),
    ({"text": "4 RUE DU FOUR 75006 PARIS"}, ("match", "match", None, "match")),
    ({"text": "12 RUE DES JOUETS 69002 LYON"}, ("not_found", "not_found", None, "mismatch")),
    # the postcode there, the city written otherwise: not confirmed, not flagged
    ({"text": "4 RUE DU FOUR 75006 PARIS 6E"}, ("match", "match", None, "match")),
    ({"text": "4 RUE DU FOUR 75006 LUTECE"}, ("match", "not_found", None, "unconfirmed")),
    # the city there, no postcode: unconfirmed
    ({"text": "PARIS"}, ("not_found", "match", None, "unconfirmed")),
    # parts
    ({"street": "4 Rue du Four", "postcode": "75006", "city": "PARIS"},
     ("match", "match", "match", "match")),
    ({"street": "4 Rue du Four", "postcode": "75011", "city": "PARIS"},
     ("mismatch", "match", "match", "mismatch")),
    ({"street": "18 avenue de la Gare", "postcode": "75006", "city": "Paris"},
     ("match", "match", "mismatch", "mismatch")),
    ({"street": "6 rue du Four", "postcode": "75006", "city": "Paris"},
     ("match", "match", "mismatch", "mismatch")),
    ({"postcode": "75006", "city": "Lutece"},
     ("match", "mismatch", None, "unconfirmed")),
    ({}, (None, None, None, "unconfirmed")),
]


@pytest.mark.parametrize(("source", "expected"), ADDRESSES)
def test_compare_address(source: dict, expected: tuple) -> None:
    m = names.compare_address(DECLARED, **source)
    assert (m.postcode, m.city, m.street, m.verdict) == expected


@pytest.mark.parametrize(("declared", "text"), [
    ({"postcode": "1017 HL", "city": "Amsterdam"}, "\nVIJZELSTRAAT 00068\n1017HL AMSTERDAM\n"),
    ({"postcode": "09-411", "city": "Plock"}, "CHEMIKÓW 7, 09-411 PŁOCK"),
    ({"postcode": "L-1855", "city": "Luxembourg"}, "38, AVENUE JOHN F. KENNEDY L-1855  LUXEMBOURG"),
    ({"postcode": "1070", "city": "Wien"}, "Mariahilfer Strasse 12\nAT-1070 Wien"),
    ({"postcode": "BT1 3EA", "city": "Belfast"},
     "UNIT 4 HARBOUR POINT\n1 DONEGALL QUAY\nBELFAST\n\nBT1 3EA"),
    ({"postcode": "41122", "city": "Modena"}, "VIA EMILIA EST 1163 \n41122 MODENA MO\n"),
    ({"postcode": "80331", "city": "München"}, "Musterstraße 1, 80331 MUENCHEN, DE"),
])
def test_addresses_as_the_member_states_write_them(declared: dict, text: str) -> None:
    assert names.compare_address(declared, text=text).verdict == "match"


def test_street_numbers_and_short_words() -> None:
    assert names.same_street("Hauptstr. 5", "Hauptstraße 5") is True
    assert names.same_street("Avda. Reina Victoria 3", "Avenida Reina Victoria 3") is True
    assert names.same_street("Hauptstr. 5", "Hauptstr. 5a") is False
    assert names.same_street("Hauptstr. 5-7", "Hauptstraße 5") is True
    assert names.same_street("Flat 2, 10 High Street", "10 High Street") is True
    assert names.same_street("Bahnhofstrasse 5", "Schillerstrasse 5") is False
    assert names.same_street(None, "Hauptstr. 5") is None


@pytest.mark.parametrize(("name", "country", "form"), [
    ("Boulangerie Martin SAS", "FR", "SAS"), ("Handel 5 GmbH", "DE", "GMBH"),
    ("Acme Trading Ltd", "GB", "LTD"), ("Polmex Sp. z o.o.", "PL", "SPZOO"),
    ("Nordlicht AS", "NO", "AS"), ("AB Volvo", "SE", "AB"), ("Ferrari S.p.A.", "IT", "SPA"),
    ("Brouwerij De Kroon B.V.", "NL", "BV"), ("Hansen A/S", "DK", "AS"),
    ("Bäckerei Huber e.K.", "DE", "EK"),  # a registered merchant: in the Handelsregister
    ("Jean Dupont EI", "FR", None), ("Ola Nordmann ENK", "NO", None),
    ("Müller & Schmidt GbR", "DE", None), ("Rosa Rodriguez", "ES", None), ("", "ES", None),
])
def test_registered_company_forms(name: str, country: str, form: str | None) -> None:
    assert names.registered_company_form(name, country) == form
