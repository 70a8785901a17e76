"""Legal names of companies: normalisation that knows legal forms, and a fuzzy comparison.

Used wherever a trader's declared name meets a name from an official source (business
registers, VIES, payee verification), so that every service judges names the same way.

:func:`normalise` transliterates to ASCII (``unidecode``: ``ß`` → ``ss``, ``é`` → ``e``, Greek
and Cyrillic to Latin), folds case, splits words at white space and at ``,;:()`` while other
punctuation joins the parts of a word (``L'Oréal`` → ``loreal``, ``S.A.`` → ``sa``, ``A/S`` →
``as``), reads ``&``, ``und``, ``et``, ``og``, ``och`` as ``and``, drops a leading ``the`` and a
trailing liquidation marker (``i.L.``, ``en liquidation``...), then takes one legal form off
the end of the name (or, failing that, off its start: ``Stichting X``, ``AB Volvo``). Legal
forms come from the data table ``shared/legal_forms.csv`` (hand-compiled after the ISO 20275
Entity Legal Forms list published by GLEIF; the file names its source and its limits), where
every full name and abbreviation of a form maps to one canonical code such as ``GMBH``,
``SA``, ``BV`` or ``LTD``. With a ``country``, that country's forms (and the EU's) are tried
first and the rest of the table after, so an English ``Ltd`` in a German register is still
recognised.

:func:`compare` scores the two normalised texts with rapidfuzz, the highest of the plain
ratio, the token-sort ratio (word order ignored), the ratio with spaces removed (``Deutsche
Bahn`` against ``DeutscheBahn``) and 0.85 times the token-set ratio (so a name whose words all
appear in the other, ``Philips`` in ``Koninklijke Philips``, is ``close`` but never a
``match``), each also with ``ae``/``oe``/``ue``/``aa`` read as one vowel (``Mueller`` and
``Müller``), scaled to 0..1. Verdicts:

- ``match`` when the score is at least :data:`MATCH_THRESHOLD` (0.94: one wrong letter in a
  13-letter name, ``Deutsche Bank`` against ``Deutsche Bahn``, scores 0.92 and is not a match),
- ``close`` when it is at least :data:`CLOSE_THRESHOLD` (0.80): a human should look,
- ``no_match`` below, and whenever either name is empty once normalised.

The score measures the names without their legal forms. When both names carry a legal form
and the forms differ (``GmbH`` against ``AG``), the verdict is at most ``close``: the same
name with another form is often another company of the same group. A legal form present on
one side only changes nothing, because traders often leave it out.

>>> compare("ACME GmbH", "Acme Gesellschaft mit beschränkter Haftung").verdict
'match'
>>> compare("Société Générale S.A.", "SOCIETE GENERALE").verdict
'match'
>>> compare("ACME GmbH", "ACME AG").verdict
'close'
"""

from __future__ import annotations

import csv
import functools
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources

from rapidfuzz import fuzz
from unidecode import unidecode

#: Scores at or above this are a ``match``.
MATCH_THRESHOLD = 0.94
#: Scores at or above this (and below :data:`MATCH_THRESHOLD`) are ``close``.
CLOSE_THRESHOLD = 0.80
#: The score of a name whose words all appear in the other name (``Philips`` in
#: ``Koninklijke Philips``): enough for ``close``, never for ``match``.
CONTAINED_WEIGHT = 0.85
#: Partnerships whose partner is a company: ``X GmbH & Co. KG``, ``X B.V. & Co. KG``.
_PARTNERSHIPS_WITH_PARTNER = frozenset({"KG", "OHG", "KGAA"})

#: Forms of EU law, valid in every member state.
_EU = "EU"
#: ISO 3166 codes that the table writes otherwise.
_COUNTRY_ALIASES = {"GR": "EL"}
_CONNECTORS = frozenset({"and", "und", "et", "og", "och"})
_LIQUIDATION_MARKERS = (
    "i.L.",
    "in Liquidation",
    "in Abwicklung",
    "en liquidation",
    "in liquidazione",
    "in liquidatie",
    "i likvidation",
    "i likvidasjon",
    "under avvikling",
    "under konkurs",
    "in liquidation",
)

#: Punctuation that separates words even without a space (``Telefonica,S.A.``, ``AB (publ)``).
_SEPARATORS = re.compile(r"[,;:()\[\]{}\"+*|]")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_DIGRAPHS = re.compile(r"ae|oe|ue|aa")


@dataclass(frozen=True)
class NormalisedName:
    """A name ready for comparison.

    ``original`` is the name as given, ``text`` the normalised name without its legal form,
    ``legal_form`` the canonical code of the form found (``"GMBH"``, ``"SA"``...) or ``None``.
    """

    original: str
    text: str
    legal_form: str | None


@dataclass(frozen=True)
class NameMatch:
    """The outcome of :func:`compare`.

    ``score`` is 0..1, ``verdict`` one of ``"match"``, ``"close"``, ``"no_match"``; ``a`` and
    ``b`` are the normalised texts that were compared and ``legal_forms`` their forms' codes.
    """

    score: float
    verdict: str
    a: str
    b: str
    legal_forms: tuple[str | None, str | None]


def _words(text: str) -> list[str]:
    """Split ``text`` into lower-case ASCII words: the first steps of :func:`normalise`.

    Words are split at white space; punctuation inside a word joins its parts, so ``B.V.``,
    ``A/S`` and ``S.A.R.L.`` are one word each, and ``i.L.`` after ``B.V.`` stays apart.
    """
    text = unidecode(text).lower().replace("&", " and ")
    text = _SEPARATORS.sub(" ", text)
    words = (_NON_ALNUM.sub("", chunk) for chunk in text.split())
    return ["and" if word in _CONNECTORS else word for word in words if word]


def _compact(words: Iterable[str]) -> str:
    """Words joined without spaces: ``S.à r.l.``, ``S.A.R.L.`` and ``SARL`` are all ``sarl``."""
    return "".join(words)


def _join_letters(words: list[str]) -> list[str]:
    """Join runs of single letters, so that ``A.B.C. Trading`` reads ``abc trading``."""
    joined: list[str] = []
    run: list[str] = []
    for word in [*words, ""]:  # the sentinel flushes the last run
        if len(word) == 1 and word.isalpha():
            run.append(word)
            continue
        if run:
            joined.append("".join(run))
            run = []
        if word:
            joined.append(word)
    return joined


@dataclass(frozen=True)
class _Table:
    """Legal-form variants, compacted, with the code of each per country."""

    variants: dict[str, dict[str, str]]
    longest: int  # the most words a variant has
    markers: frozenset[str]


def _split(cell: str) -> Iterable[str]:
    return (part.strip() for part in cell.split("|") if part.strip())


@functools.cache
def _table() -> _Table:
    """Load ``legal_forms.csv`` once; every name and abbreviation becomes a compact key."""
    text = resources.files("shared").joinpath("legal_forms.csv").read_text(encoding="utf-8")
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("#")]
    variants: dict[str, dict[str, str]] = {}
    longest = 1
    for row in csv.DictReader(lines):
        for variant in [*_split(row["names"]), *_split(row["abbreviations"])]:
            words = _words(variant)
            if words:
                variants.setdefault(_compact(words), {}).setdefault(row["country"], row["code"])
                longest = max(longest, len(words))
    markers = frozenset(_compact(_words(marker)) for marker in _LIQUIDATION_MARKERS)
    longest = max(longest, *(len(_words(marker)) for marker in _LIQUIDATION_MARKERS))
    return _Table(variants, longest, markers)


def _code(key: str, by_country: dict[str, str], country: str | None) -> str | None:
    """The code of variant ``key`` in ``country`` (``None``: not a form there), or the likeliest.

    Without a country, an abbreviation that spells a code means that code (``ab`` is Sweden's
    ``AB``, not Finland's ``OY``, whose Swedish name it also abbreviates); else the commonest.
    """
    if country is not None:
        return by_country.get(country) or by_country.get(_EU)
    codes = Counter(by_country.values())
    for code in codes:
        if code.replace("_", "").lower() == key:
            return code
    return codes.most_common(1)[0][0]


def _strip_marker(words: list[str]) -> list[str]:
    """Drop a trailing liquidation marker (``i.L.``, ``en liquidation``...)."""
    markers = _table().markers
    for n in range(min(_table().longest, len(words) - 1), 0, -1):
        if _compact(words[-n:]) in markers:
            return words[:-n]
    return words


def _find_form(
    words: list[str], country: str | None, *, start: bool = True
) -> tuple[str | None, list[str]]:
    """Take one legal form off the end (or, with ``start``, the start) of ``words``.

    The longest variant wins, so ``GmbH & Co. KG`` is read before ``KG``. A variant never
    splits a run of single letters (``A B C Trading`` has no ``AB`` in it).
    """
    table = _table()
    longest = min(table.longest, len(words) - 1)
    for n in range(longest, 0, -1):
        if _single(words[-n]) and _single(words[-n - 1]):
            continue
        key = _compact(words[-n:])
        found = table.variants.get(key)
        if found and (code := _code(key, found, country)):
            return code, words[:-n]
    for n in range(longest if start else 0, 0, -1):
        if _single(words[n - 1]) and _single(words[n]):
            continue
        key = _compact(words[:n])
        found = table.variants.get(key)
        if found and (code := _code(key, found, country)):
            return code, words[n:]
    return None, words


def _single(word: str) -> bool:
    return len(word) == 1


@functools.lru_cache(maxsize=8192)
def normalise(name: str, country: str | None = None) -> NormalisedName:
    """Normalise a company name and find its legal form.

    ``country`` (ISO 3166 alpha-2; ``GR`` and ``EL`` both mean Greece) decides between forms
    that share an abbreviation and keeps a word from being read as another country's form.

    >>> normalise("ACME GmbH")
    NormalisedName(original='ACME GmbH', text='acme', legal_form='GMBH')
    >>> normalise("Société Générale S.A.", "FR")
    NormalisedName(original='Société Générale S.A.', text='societe generale', legal_form='SA')
    >>> normalise("Müller & Söhne GmbH & Co. KG").legal_form
    'GMBH_CO_KG'
    >>> normalise("Bakkerij Jansen B.V. i.L.", "NL")
    NormalisedName(original='Bakkerij Jansen B.V. i.L.', text='bakkerij jansen', legal_form='BV')
    >>> normalise("Stichting Het Groene Hart").legal_form
    'STICHTING'
    >>> greek = normalise("\u0391\u039a\u039c\u0395 \u0391.\u0395.", "GR")  # in Greek
    >>> greek.text, greek.legal_form
    ('akme', 'AE')
    >>> normalise("AG").text  # a form alone is kept as the name
    'ag'
    """
    country = country.upper() if country else None
    country = _COUNTRY_ALIASES.get(country or "", country)
    words = _strip_marker(_words(name))
    if words[:1] == ["the"] and len(words) > 1:
        words = words[1:]
    form: str | None = None
    if len(words) > 1:
        form, rest = _find_form(words, country)
        if form is None and country is not None:
            form, rest = _find_form(words, None)
        if form is not None:
            words = rest
        if form in _PARTNERSHIPS_WITH_PARTNER and words[-2:] == ["and", "co"] and len(words) > 3:
            partner, rest = _find_form(words[:-2], country, start=False)
            if partner is None and country is not None:
                partner, rest = _find_form(words[:-2], None, start=False)
            if partner is not None and rest:  # "X GmbH & Co. KG": one compound form
                form, words = f"{partner}_CO_{form}", rest
    return NormalisedName(original=name, text=" ".join(_join_letters(words)), legal_form=form)


def _fold(text: str) -> str:
    """Spell ``ae``, ``oe``, ``ue`` and ``aa`` as one vowel (``Mueller`` reads like ``Muller``)."""
    return _DIGRAPHS.sub(lambda m: m.group(0)[0], text)


def _similarity(a: str, b: str) -> float:
    return max(
        fuzz.ratio(a, b),
        fuzz.token_sort_ratio(a, b),
        fuzz.ratio(a.replace(" ", ""), b.replace(" ", "")),
        CONTAINED_WEIGHT * fuzz.token_set_ratio(a, b),
    )


def score(a: str, b: str) -> float:
    """Similarity of two normalised texts, 0..1 (see the module docstring).

    >>> score("deutsche bahn", "deutschebahn")
    1.0
    >>> score("muller and sohne", "mueller and soehne")
    1.0
    >>> score("philips", "koninklijke philips")
    0.85
    >>> score("acme", "")
    0.0
    """
    if not a or not b:
        return 0.0
    best = max(_similarity(a, b), _similarity(_fold(a), _fold(b)))
    return round(best / 100.0, 4)


def compare(a: str, b: str, country: str | None = None) -> NameMatch:
    """Compare two company names; ``country`` applies to both (see :func:`normalise`).

    >>> m = compare("Acme Trading Ltd", "ACME TRADING LIMITED", "GB")
    >>> (m.score, m.verdict, m.a, m.legal_forms)
    (1.0, 'match', 'acme trading', ('LTD', 'LTD'))
    >>> compare("Acme", "Zenith Logistics").verdict
    'no_match'
    """
    left, right = normalise(a, country), normalise(b, country)
    value = score(left.text, right.text)
    if value >= MATCH_THRESHOLD:
        verdict = "match"
    elif value >= CLOSE_THRESHOLD:
        verdict = "close"
    else:
        verdict = "no_match"
    forms = (left.legal_form, right.legal_form)
    if verdict == "match" and None not in forms and forms[0] != forms[1]:
        verdict = "close"
    return NameMatch(score=value, verdict=verdict, a=left.text, b=right.text, legal_forms=forms)
