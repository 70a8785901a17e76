"""IČO (Czech Republic, identifikační číslo osoby: the identification number of a legal entity,
a sole trader or an organisational unit of the state).

Definition: the IČO is assigned under the Act on Basic Registers (zákon č. 111/2009 Sb., o
základních registrech, the registr osob keeps it) and was defined before by the State
Statistical Service Act (zákon č. 89/1995 Sb.), under which the Czech Statistical Office lays
down how it is built. It has 8 digits; older, shorter numbers are padded with leading zeros
(ARES answers only the 8-digit form). The last digit is a check digit: with the first seven
digits weighted 8, 7, 6, 5, 4, 3, 2, the remainder ``r`` of their sum divided by 11 gives the
check digit ``(11 - r) % 10`` (``r`` = 0 gives 1, ``r`` = 1 gives 0); see
https://cs.wikipedia.org/wiki/Identifika%C4%8Dn%C3%AD_%C4%8D%C3%ADslo_osoby. python-stdnum has no
IČO module; its ``stdnum.cz.dic`` applies the same rule to the 8-digit DIČ of a legal entity,
which is ``CZ`` followed by the IČO, so a leading ``CZ`` is accepted here too.

>>> validate('25123891')
'25123891'
>>> validate('IČO: 251 23 891')
'25123891'
>>> validate('6947')  # written without its leading zeros (Ministry of Finance)
'00006947'
>>> validate('25123890')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidChecksum: The number's checksum or check digit is invalid.
>>> validate('251238911')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidLength: The number has an invalid length.
"""

from __future__ import annotations

from stdnum.exceptions import InvalidChecksum, InvalidFormat, InvalidLength, ValidationError
from stdnum.util import clean

#: Prefixes written before the number (longest first).
PREFIXES = ("IČO", "ICO", "IČ", "IC", "CZ")


def compact(number: str) -> str:
    """Remove spaces, separators and a leading ``IČO``, ``IČ`` or ``CZ``; pad to 8 digits.

    >>> compact('IČ 00006947'), compact('CZ25123891'), compact('ičo 6947')
    ('00006947', '25123891', '00006947')
    """
    number = clean(number, " -./:").strip().upper()
    for prefix in PREFIXES:
        if number.startswith(prefix):
            number = number[len(prefix):]
            break
    if number.isdigit() and len(number) < 8:
        number = number.zfill(8)
    return number


def calc_check_digit(number: str) -> str:
    """The check digit of the first seven digits.

    >>> calc_check_digit('2512389'), calc_check_digit('0000694')
    ('1', '7')
    """
    remainder = sum((8 - i) * int(n) for i, n in enumerate(number[:7])) % 11
    return str((11 - remainder) % 10)


def validate(number: str) -> str:
    """Check the length, the digits and the check digit; return the 8-digit number."""
    number = compact(number)
    if not number.isdigit():
        raise InvalidFormat()
    if len(number) != 8:
        raise InvalidLength()
    if int(number) == 0:
        raise InvalidFormat()
    if calc_check_digit(number) != number[-1]:
        raise InvalidChecksum()
    return number


def is_valid(number: str) -> bool:
    """Whether the number is a valid IČO.

    >>> is_valid('27074358'), is_valid('27074357'), is_valid('00000000')
    (True, False, False)
    """
    try:
        return bool(validate(number))
    except ValidationError:
        return False


def format(number: str) -> str:
    """The number as ARES writes it (8 digits).

    >>> format('IČO 6947')
    '00006947'
    """
    return compact(number)
