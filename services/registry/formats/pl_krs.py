"""Numer KRS (Poland, number in the Krajowy Rejestr Sądowy, the National Court Register).

Definition: the Act of 20 August 1997 on the National Court Register (ustawa o Krajowym
Rejestrze Sądowym) gives each entity entered in the register a number, assigned in sequence and
written with 10 digits and leading zeros (``KRS 0000012345``; Ministry of Justice,
https://ekrs.ms.gov.pl/). There is no check digit. Numbers written without their leading zeros
are padded.

>>> validate('KRS 0000012345')
'0000012345'
>>> validate('12345')
'0000012345'
>>> validate('12345678901')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: The number has an invalid length.
>>> validate('0000000000')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidFormat: The number has an invalid format.
"""

from __future__ import annotations

from stdnum.exceptions import InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean


def compact(number: str) -> str:
    """Remove spaces, separators and a leading ``KRS``; pad to 10 digits.

    >>> compact('KRS: 12345')
    '0000012345'
    """
    number = clean(number, " -./:").strip().upper()
    if number.startswith("KRS"):
        number = number[3:]
    if number.isdigit() and len(number) < 10:
        number = number.zfill(10)
    return number


def validate(number: str) -> str:
    """Check that the number is at most 10 digits and not zero; return it with 10 digits."""
    number = compact(number)
    if not number.isdigit():
        raise InvalidFormat()
    if len(number) != 10:
        raise InvalidLength()
    if int(number) == 0:
        raise InvalidFormat()
    return number


def is_valid(number: str) -> bool:
    """Whether the number is a well-formed KRS number.

    >>> is_valid('0000012345'), is_valid('KRS 12A45')
    (True, False)
    """
    try:
        return bool(validate(number))
    except ValidationError:
        return False


def format(number: str) -> str:
    """The number as the register writes it.

    >>> format('12345')
    '0000012345'
    """
    return compact(number)
