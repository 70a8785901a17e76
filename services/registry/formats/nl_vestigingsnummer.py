"""Vestigingsnummer (Netherlands Chamber of Commerce number of one branch, "vestiging").

Definition: the Kamer van Koophandel gives every branch registered in the Handelsregister a
12-digit number, apart from the enterprise's 8-digit KvK-nummer (Handelsregisterbesluit 2008;
KvK: "Het vestigingsnummer bestaat uit 12 cijfers", https://www.kvk.nl/). No check digit.

>>> validate('0000 1234 5678')
'000012345678'
>>> validate('12345678')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: The number has an invalid length.
"""

from __future__ import annotations

from stdnum.exceptions import InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean


def compact(number: str) -> str:
    """Remove spaces and separators.

    >>> compact('0000.1234.5678')
    '000012345678'
    """
    return clean(number, " -./").strip().upper()


def validate(number: str) -> str:
    """Check that the number is 12 digits; return it compacted."""
    number = compact(number)
    if not number.isdigit():
        raise InvalidFormat()
    if len(number) != 12:
        raise InvalidLength()
    if int(number) == 0:
        raise InvalidFormat()
    return number


def is_valid(number: str) -> bool:
    """Whether the number is a well-formed vestigingsnummer.

    >>> is_valid('000012345678'), is_valid('00001234567X')
    (True, False)
    """
    try:
        return bool(validate(number))
    except ValidationError:
        return False


def format(number: str) -> str:
    """The number as KvK writes it (12 digits).

    >>> format('0000 1234 5678')
    '000012345678'
    """
    return compact(number)
