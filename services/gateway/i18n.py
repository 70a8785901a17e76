"""Messages a trader reads, in the trader's language: the reason catalogue's ``message``s,
correction texts and the fixed texts of statements of reasons (Art 17).

The catalogues are gettext ``.po`` files (``translations/<locale>/LC_MESSAGES/messages.po``),
read at run time with Babel (:func:`babel.messages.pofile.read_po`): no compile step, nothing
to forget at build time. The ``msgid`` is the English text; English, French and German are
complete (``tests/gateway/test_i18n.py`` fails on a missing translation or a placeholder that
differs from the English one). A message not in a catalogue is shown in English.

The trader's language is the submission's ``locale`` (or the request's), a language tag such
as ``fr`` or ``de-AT``: its language if supported, else English (:func:`negotiate`).
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from babel.messages.pofile import read_po

#: The languages a trader may read its messages in; the first is the fallback.
LOCALES = ("en", "fr", "de")
DEFAULT_LOCALE = LOCALES[0]
TRANSLATIONS_DIR = Path(__file__).parent / "translations"
#: A language tag (BCP 47, simplified): language, then optional subtags.
TAG = re.compile(r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$")


def negotiate(tag: str | None) -> str:
    """The supported locale for a language tag, English when none fits.

    >>> negotiate("fr-BE"), negotiate("de_AT"), negotiate("pt"), negotiate(None)
    ('fr', 'de', 'en', 'en')
    """
    if not tag or not TAG.match(tag):
        return DEFAULT_LOCALE
    language = re.split(r"[-_]", tag)[0].lower()
    return language if language in LOCALES else DEFAULT_LOCALE


@lru_cache(maxsize=len(LOCALES))
def catalogue(locale: str) -> dict[str, str]:
    """``msgid → msgstr`` of a locale's catalogue (translated entries only)."""
    path = TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po"
    with path.open("rb") as f:
        cat = read_po(f, locale=locale)
    return {str(m.id): str(m.string) for m in cat if m.id and m.string}


def translate(locale: str | None, message: str, **params: object) -> str:
    """``message`` (its English text) in ``locale``, with ``%(name)s`` placeholders filled.

    >>> translate("de", "Statement of reasons")
    'Begründung'
    >>> translate("fr", "Unknown text %(x)s", x=1)
    'Unknown text 1'
    """
    text = catalogue(negotiate(locale)).get(message) or message
    return text % params if params else text


def _(message: str) -> str:
    """Mark ``message`` for the catalogue (it is translated where it is shown)."""
    return message
