"""Numero REA (Italy, Repertorio Economico Amministrativo number of the Registro delle imprese).

Definition: D.P.R. 7 dicembre 1995 n. 581, art. 9, has each Chamber of Commerce keep the REA
and number its entries; a REA number is therefore the chamber's province code (the "sigla
automobilistica" of the province, e.g. ``MI`` Milano, ``RM`` Roma) and a sequence number of at
most 7 digits, written ``MI-1234567`` (Registro delle imprese, https://www.registroimprese.it/).
There is no check digit. Province codes are the current ones (ISTAT list of provinces) plus the
four Sardinian provinces abolished in 2016 (``CI``, ``VS``, ``OG``, ``OT``), whose numbers are
still quoted.

>>> validate('MI-1234567')
'MI-1234567'
>>> validate('REA RM 1234567')
'RM-1234567'
>>> validate('mi 123')
'MI-123'
>>> validate('XX-1234567')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: One of the parts of the number are invalid or unknown.
>>> validate('MI-12345678')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: The number has an invalid length.
"""

from __future__ import annotations

from stdnum.exceptions import InvalidComponent, InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean

#: Province codes of the chambers of commerce.
PROVINCES = frozenset(
    """AG AL AN AO AP AQ AR AT AV BA BG BI BL BN BO BR BS BT BZ CA CB CE CH CL CN CO CR CS CT
    CZ EN FC FE FG FI FM FR GE GO GR IM IS KR LC LE LI LO LT LU MB MC ME MI MN MO MS MT NA NO
    NU OR PA PC PD PE PG PI PN PO PR PT PU PV PZ RA RC RE RG RI RM RN RO SA SI SO SP SR SS SU
    SV TA TE TN TO TP TR TS TV UD VA VB VC VE VI VR VT VV CI VS OG OT""".split()
)


def compact(number: str) -> str:
    """Remove spaces, separators and a leading ``REA``; upper-case.

    >>> compact('REA: mi/1234567')
    'MI1234567'
    """
    number = clean(number, " -./:").strip().upper()
    if number.startswith("REA") and not number[3:5].isdigit():
        number = number[3:]
    return number


def validate(number: str) -> str:
    """Check the province code and the number; return it as ``PP-NNNNNNN``."""
    number = compact(number)
    province, digits = number[:2], number[2:]
    if not province.isalpha() or not digits.isdigit():
        raise InvalidFormat()
    if not 1 <= len(digits) <= 7:
        raise InvalidLength()
    if province not in PROVINCES:
        raise InvalidComponent()
    if int(digits) == 0:
        raise InvalidFormat()
    return f"{province}-{digits}"


def is_valid(number: str) -> bool:
    """Whether the number is a well-formed REA number.

    >>> is_valid('TO-1234567'), is_valid('TO-')
    (True, False)
    """
    try:
        return bool(validate(number))
    except ValidationError:
        return False


def format(number: str) -> str:
    """The number as the Registro delle imprese writes it.

    >>> format('mi 1234567')
    'MI-1234567'
    """
    return validate(number)
