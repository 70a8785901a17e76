"""KvK-nummer (Netherlands Chamber of Commerce number of an enterprise or legal entity).

Definition: the Kamer van Koophandel gives every entry in the Handelsregister an 8-digit
number (Handelsregisterwet 2007 and Handelsregisterbesluit 2008; KvK: "Het KVK-nummer bestaat
uit 8 cijfers", https://www.kvk.nl/). There is no published check digit: older numbers happen
to pass the 11-test, newer ones need not, so none is applied. A branch has its own 12-digit
vestigingsnummer (:mod:`.nl_vestigingsnummer`).

>>> validate('6959 9084')
'69599084'
>>> validate('KvK 69599084')
'69599084'
>>> validate('6959908')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: The number has an invalid length.
>>> validate('6959908A')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidFormat: The number has an invalid format.
"""

from __future__ import annotations

from stdnum.exceptions import InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean


def compact(number: str) -> str:
    """Remove spaces, separators and a leading ``KvK``.

    >>> compact('KVK-nr. 69.59.90.84')
    '69599084'
    """
    number = clean(number, " -./:").strip().upper()
    for prefix in ("KVKNUMMER", "KVKNR", "KVK"):
        if number.startswith(prefix):
            return number[len(prefix):]
    return number


def validate(number: str) -> str:
    """Check that the number is 8 digits; return it compacted."""
    number = compact(number)
    if not number.isdigit():
        raise InvalidFormat()
    if len(number) != 8:
        raise InvalidLength()
    if int(number) == 0:
        raise InvalidFormat()
    return number


def is_valid(number: str) -> bool:
    """Whether the number is a well-formed KvK number.

    >>> is_valid('69599084'), is_valid('00000000')
    (True, False)
    """
    try:
        return bool(validate(number))
    except ValidationError:
        return False


def format(number: str) -> str:
    """The number as KvK writes it (8 digits, no spaces).

    >>> format('6959 9084')
    '69599084'
    """
    return compact(number)
