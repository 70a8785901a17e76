"""Company number of UK Companies House (England and Wales, Scotland, Northern Ireland).

Definition: Companies House gives every company, LLP, limited partnership and other body it
registers an 8-character number: 8 digits for companies of England and Wales, or a 2-character
prefix naming the register and kind of body followed by 6 digits. The prefixes are those of
Companies House's own enumerations (``companieshouse/api-enumerations``,
``company_prefix_features.yml``): for example ``SC`` Scotland, ``NI`` Northern Ireland, ``OC``
/ ``SO`` / ``NC`` limited liability partnerships, ``LP`` / ``SL`` / ``NL`` limited partnerships,
``FC`` / ``SF`` / ``NF`` foreign companies, ``R0`` old Irish companies. There is no check digit.
Numbers are often written without their leading zeros (``6402`` for ``00006402``), so all-digit
numbers of fewer than 8 digits are padded.

>>> validate('SC 123456')
'SC123456'
>>> validate('6402')
'00006402'
>>> validate('oc300001')
'OC300001'
>>> validate('R0001234')
'R0001234'
>>> validate('XX123456')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: One of the parts of the number are invalid or unknown.
>>> validate('SC12345')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: The number has an invalid length.
>>> validate('00000000')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidFormat: The number has an invalid format.
"""

from __future__ import annotations

from stdnum.exceptions import InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean

#: Prefix → the kind of body, as Companies House's enumerations name it.
PREFIXES: dict[str, str] = {
    "AC": "assurance-company-england-wales",
    "BR": "branch-of-an-overseas-company",
    "ES": "european-public-limited-liability-company-scotland",
    "FC": "foreign-company-england-or-wales",
    "GE": "european-economic-interest-grouping-england-wales",
    "GN": "european-economic-interest-grouping-northern-ireland",
    "GS": "european-economic-interest-grouping-scotland",
    "IC": "investment-company-with-variable-capital-england-or-wales",
    "IP": "industrial-provident-england-or-wales",
    "LP": "limited-partnership-england-or-wales",
    "NA": "assurance-company-ireland",
    "NC": "limited-liability-partnership-northern-ireland",
    "NF": "foreign-company-northern-ireland",
    "NI": "company-incorporated-in-northern-ireland",
    "NL": "limited-partnership-northern-ireland",
    "NO": "other-industrial-provident-company-northern-ireland",
    "NP": "industrial-provident-company-northern-ireland",
    "NR": "company-incorporated-by-royal-charter-northern-ireland",
    "NV": "investment-company-with-variable-capital-northern-ireland",
    "NZ": "not-a-companies-act-company-northern-ireland",
    "OC": "limited-liability-partnership-england-or-wales",
    "R0": "old-irish-company",
    "RC": "company-incorporated-by-royal-charter-england-or-wales",
    "SA": "assurance-company-scotland",
    "SC": "company-incorporated-in-scotland",
    "SE": "european-public-limited-liability-company-england-wales",
    "SF": "foreign-company-scotland",
    "SI": "investment-company-with-variable-capital-scotland",
    "SL": "limited-partnership-scotland",
    "SO": "limited-liability-partnership-scotland",
    "SP": "industrial-provident-scotland",
    "SR": "company-incorporated-by-royal-charter-scotland",
    "SZ": "not-a-companies-act-company-scotland",
    "ZC": "not-a-companies-act-company-england-or-wales",
}


def compact(number: str) -> str:
    """Remove spaces and separators, upper-case, and pad all-digit numbers to 8 digits.

    >>> compact(' sc-123 456 ')
    'SC123456'
    """
    number = clean(number, " -./").strip().upper()
    if number.isdigit() and len(number) < 8:
        number = number.zfill(8)
    return number


def validate(number: str) -> str:
    """Check the number's length, prefix and digits; return it compacted."""
    number = compact(number)
    if len(number) != 8:
        raise InvalidLength()
    prefix, digits = number[:2], number[2:]
    if prefix.isdigit():
        digits = number
    elif prefix not in PREFIXES:
        raise InvalidComponent()
    if not digits.isdigit() or int(digits) == 0:
        raise InvalidFormat()
    return number


def is_valid(number: str) -> bool:
    """Whether the number is a well-formed company number.

    >>> is_valid('NI012345'), is_valid('NI01234A')
    (True, False)
    """
    try:
        return bool(validate(number))
    except ValidationError:
        return False


def format(number: str) -> str:
    """The number as Companies House writes it (no spaces).

    >>> format('sc 123456')
    'SC123456'
    """
    return compact(number)


def body_kind(number: str) -> str:
    """What kind of body the number belongs to, by its prefix.

    >>> body_kind('OC300001')
    'limited-liability-partnership-england-or-wales'
    >>> body_kind('00006402')
    'company-incorporated-in-england-or-wales'
    """
    number = compact(number)
    return PREFIXES.get(number[:2], "company-incorporated-in-england-or-wales")
