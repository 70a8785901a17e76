"""VAT numbers: clean-up, country prefix, the local format and checksum check, and the source.

The check digits of all 27 member states and of Northern Ireland (``XI``) come from
python-stdnum (``stdnum.eu.vat``); this module adds what VIES needs on top: VIES's own country
codes (Greece is ``EL``, not ``GR``), the number without its prefix, and the VIES test-service
numbers, which only the sandbox accepts (a trader must not "verify" with VAT number 100).

Numbers VIES does not hold are checked against their own source (:attr:`ParsedVat.scheme`):
``GB`` (HMRC, ``stdnum.gb.vat``), ``CHE``/``CH`` (the Swiss UID register, ``stdnum.ch.uid``;
a trailing ``MWST``/``TVA``/``IVA``/``TPV`` is dropped) and ``NO…MVA`` (Brønnøysund,
``stdnum.no.orgnr``). Any other letter prefix has no online source: it is format-valid with
scheme ``other`` (the check answers ``unverifiable``, never ``invalid``).

>>> parse("de 136.695.976").vat_number
'DE136695976'
>>> parse("GR094259216").vat_number
'EL094259216'
>>> parse("DE136695977").reason
'checksum'
>>> parse("DE100").reason
'format'
>>> parse("DE100", sandbox=True).test_number
True
>>> parse("GB 980 7806 84").scheme, parse("che-107.185.562 mwst").vat_number
('gb', 'CHE107185562')
>>> parse("NO 912 345 602 MVA").vat_number, parse("US123").scheme
('NO912345602MVA', 'other')
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.ch import uid as ch_uid
from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum, ValidationError
from stdnum.gb import vat as gb_vat
from stdnum.no import orgnr as no_orgnr
from stdnum.util import clean

#: VIES's country codes: the 27 member states (Greece as EL) and Northern Ireland (XI).
VIES_COUNTRIES = frozenset(
    "AT BE BG CY CZ DE DK EE EL ES FI FR HR HU IE IT LT LU LV MT NL PL PT RO SE SI SK XI".split()
)

#: The numbers of the official VIES test service; each answers the same for any country code.
VIES_TEST_NUMBERS = frozenset(
    "100 200 201 202 300 301 302 400 401 500 501 600 601".split()
)
#: The project's VIES simulator adds these (unparsable XML, a hang, a gateway error, ...).
SIMULATOR_TEST_NUMBERS = frozenset("700 701 702 703 704".split())

#: Where a number is checked live: VIES, or a national source outside it.
VIES = "vies"
GB = "gb"  # HMRC, Check a UK VAT number
CH = "ch"  # Swiss UID register
NO = "no"  # Brønnøysund, Merverdiavgiftsregisteret
OTHER = "other"  # no online source: unverifiable
#: The language suffixes of a Swiss VAT number (MWST, TVA, IVA, TPV): they name no other number.
_CH_SUFFIXES = ("MWST", "TVA", "IVA", "TPV")

#: Characters people type inside VAT numbers that carry no meaning.
_NOISE = " -./,\t\u00a0"


@dataclass(frozen=True)
class ParsedVat:
    """A VAT number as typed, cleaned up and checked locally."""

    country_code: str
    number: str
    format_valid: bool
    reason: str | None = None
    detail: str | None = None
    test_number: bool = False
    #: Where the number is checked live (:data:`VIES`, :data:`GB`, :data:`CH`, :data:`NO`,
    #: :data:`OTHER`).
    scheme: str = VIES

    @property
    def vat_number(self) -> str:
        """The normalised number with its prefix (VIES's, ``CHE`` or ``NO``…``MVA``)."""
        if self.scheme == CH:
            return "CHE" + self.number
        if self.scheme == NO:
            return "NO" + self.number + "MVA"
        return self.country_code + self.number


def compact(raw: str) -> str:
    """Remove separators and spaces and upper-case the number.

    >>> compact(" el 094 259 216 ")
    'EL094259216'
    """
    return clean(raw, _NOISE).strip().upper()


def parse(raw: str, *, sandbox: bool = False) -> ParsedVat:
    """Clean up ``raw`` and check its prefix, format and check digits without calling VIES."""
    text = compact(raw)
    country, number = text[:2], text[2:]
    if country == "GR":  # ISO code typed for Greece; VIES knows it as EL
        country = "EL"
    if not (len(country) == 2 and country.isascii() and country.isalpha()):
        return ParsedVat(
            country,
            number,
            False,
            "format",
            "The number must start with its country code, e.g. DE136695976 or GB980780684.",
        )
    if not number:
        return ParsedVat(country, number, False, "format",
                         "The number is missing after its country code.")
    if country not in VIES_COUNTRIES:
        return _parse_outside_vies(country, number)
    if sandbox and number in VIES_TEST_NUMBERS | SIMULATOR_TEST_NUMBERS:
        return ParsedVat(country, number, True, test_number=True)
    try:
        eu_vat.validate(country + number)
    except InvalidChecksum as e:
        return ParsedVat(country, number, False, "checksum", str(e))
    except ValidationError as e:
        return ParsedVat(country, number, False, "format", str(e))
    return ParsedVat(country, number, True)


def _parse_outside_vies(country: str, number: str) -> ParsedVat:
    """A number of a country VIES does not hold, checked by its own national rules."""
    validator: object
    if country == "GB":
        scheme, validator = GB, gb_vat
    elif country == "CH":
        scheme, validator = CH, ch_uid
        number = number.removeprefix("E")
        for suffix in _CH_SUFFIXES:
            number = number.removesuffix(suffix)
    elif country == "NO":
        scheme, validator = NO, no_orgnr
        number = number.removesuffix("MVA")
    else:
        return ParsedVat(country, number, True, scheme=OTHER)
    try:
        if scheme == CH:
            ch_uid.validate("CHE" + number)
        else:
            validator.validate(number)
    except InvalidChecksum as e:
        return ParsedVat(country, number, False, "checksum", str(e), scheme=scheme)
    except ValidationError as e:
        return ParsedVat(country, number, False, "format", str(e), scheme=scheme)
    return ParsedVat(country, number, True, scheme=scheme)


def mask(vat_number: str) -> str:
    """A VAT number for logs: the prefix and the last three characters.

    A sole trader's VAT number is personal data, so logs never carry it whole.

    >>> mask("DE136695976")
    'DE******976'
    """
    if len(vat_number) <= 5:
        return vat_number[:2] + "*" * (len(vat_number) - 2)
    return vat_number[:2] + "*" * (len(vat_number) - 5) + vat_number[-3:]
