"""Handelsregisternummer (German commercial register number), with the court given apart.

The format and the list of register courts are python-stdnum's
(:mod:`stdnum.de.handelsregisternummer`: court, register type ``HRA``/``HRB``/``GnR``/``PR``/
``VR``, number). Traders often give the court separately ("register": ``Amtsgericht
München``) and write the word "Amtsgericht" that stdnum does not expect; this module joins the
two and drops that word before stdnum checks the number.

>>> validate('HRB 12345', register='Amtsgericht München')
'München HRB 12345'
>>> validate('Amtsgericht Aachen HRA 11223')
'Aachen HRA 11223'
>>> validate('HRB 12345', register='Atlantis')
Traceback (most recent call last):
    ...
stdnum.exceptions.InvalidComponent: One of the parts of the number are invalid or unknown.
"""

from __future__ import annotations

import re

from stdnum.de import handelsregisternummer
from stdnum.exceptions import ValidationError

_COURT_WORDS = re.compile(r"\b(amtsgericht|registergericht|ag)\b\.?", re.IGNORECASE)
_REGISTER_TYPES = {t.upper(): t for t in handelsregisternummer.REGISTRY_TYPES}
_REGISTER_TYPE = re.compile(r"\b(" + "|".join(_REGISTER_TYPES) + r")\b", re.IGNORECASE)


def _join(number: str, register: str | None) -> str:
    text = f"{register} {number}" if register else number
    text = _REGISTER_TYPE.sub(lambda m: _REGISTER_TYPES[m.group(1).upper()], text)
    return " ".join(_COURT_WORDS.sub(" ", text).split())


def compact(number: str, register: str | None = None) -> str:
    """The number with its court, as stdnum writes it (court first).

    >>> compact('HRB 13085', register='AG Fürth')
    'Fürth HRB 13085'
    """
    return handelsregisternummer.compact(_join(number, register))


def validate(number: str, register: str | None = None) -> str:
    """Check court, register type and number; return the compact form."""
    return handelsregisternummer.validate(_join(number, register))


def is_valid(number: str, register: str | None = None) -> bool:
    """Whether court, register type and number are valid.

    >>> is_valid('Fürth HRB 13085'), is_valid('HRB 13085')
    (True, False)
    """
    try:
        return bool(validate(number, register))
    except ValidationError:
        return False


def format(number: str, register: str | None = None) -> str:
    """The number as written in the register's publications (court first).

    >>> format('hrb 13085', register='Fürth')
    'Fürth HRB 13085'
    """
    try:
        return validate(number, register)
    except ValidationError:
        return compact(number, register)
