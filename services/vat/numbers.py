"""EU VAT numbers: clean-up, country prefix and the local format and checksum check.

The check digits of all 27 member states and of Northern Ireland (``XI``) come from
python-stdnum (``stdnum.eu.vat``); this module adds what VIES needs on top: VIES's own country
codes (Greece is ``EL``, not ``GR``), the number without its prefix, and the VIES test-service
numbers, which only the sandbox accepts (a trader must not "verify" with VAT number 100).

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
"""

from __future__ import annotations

from dataclasses import dataclass

from stdnum.eu import vat as eu_vat
from stdnum.exceptions import InvalidChecksum, ValidationError
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

    @property
    def vat_number(self) -> str:
        """The normalised number with its VIES country prefix."""
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
    if not country.isalpha() or country not in VIES_COUNTRIES:
        return ParsedVat(
            country,
            number,
            False,
            "format",
            "The number must start with the country code of an EU member state or XI, "
            "e.g. DE136695976.",
        )
    if sandbox and number in VIES_TEST_NUMBERS | SIMULATOR_TEST_NUMBERS:
        return ParsedVat(country, number, True, test_number=True)
    try:
        eu_vat.validate(country + number)
    except InvalidChecksum as e:
        return ParsedVat(country, number, False, "checksum", str(e))
    except ValidationError as e:
        return ParsedVat(country, number, False, "format", str(e))
    return ParsedVat(country, number, True)


def mask(vat_number: str) -> str:
    """A VAT number for logs: the prefix and the last three characters.

    A sole trader's VAT number is personal data, so logs never carry it whole.

    >>> mask("DE136695976")
    'DE******976'
    """
    if len(vat_number) <= 5:
        return vat_number[:2] + "*" * (len(vat_number) - 2)
    return vat_number[:2] + "*" * (len(vat_number) - 5) + vat_number[-3:]
