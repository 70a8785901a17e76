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


# -- addresses ---------------------------------------------------------------------------------
#
# A declared address meets the address an official source holds (VIES, a business register)
# in one of two shapes: parts (street, postcode, city: VIES's approximate-matching details, a
# register's structured record) or one line of text (VIES's ``address``, a register's joined
# address). Both are folded the way names are (ASCII, case, punctuation, ``ae``/``oe``/``ue``
# read as one vowel), then compared part by part; see :func:`compare_address`.

#: Street words written short, and how they read in full (after folding).
_STREET_WORDS = {
    "str": "strasse", "av": "avenue", "ave": "avenue", "avda": "avenida", "bd": "boulevard",
    "bld": "boulevard", "blvd": "boulevard", "rd": "road", "st": "street", "pl": "place",
    "sq": "square", "ln": "lane", "dr": "drive", "ul": "", "ulica": "", "c": "calle",
}
#: A country prefix written before a postcode: ``L-1855``, ``AT-1070``, ``D-10115``.
_POSTCODE_PREFIX = re.compile(r"^\s*[A-Za-z]{1,2}\s*-\s*(?=\d)")
#: How close two street names must be (0..1, with equal house numbers) to be the same street.
STREET_THRESHOLD = 0.80


def fold_words(text: str | None) -> list[str]:
    """Lower-case ASCII words of ``text`` (``ae``/``oe``/``ue``/``aa`` as one vowel).

    >>> fold_words("Mariahilfer Straße 12, AT-1070 Wien")
    ['mariahilfer', 'strasse', '12', 'at', '1070', 'wien']
    >>> fold_words("MÜNCHEN") == fold_words("Muenchen")
    True
    """
    if not text:
        return []
    return [_fold(w) for w in _NON_ALNUM.split(unidecode(text).lower()) if w]


def postcode_key(postcode: str | None) -> str:
    """A postcode as compared: letters and digits only, upper case, without a country prefix.

    >>> postcode_key("1017 hl"), postcode_key("L-1855"), postcode_key("09-411")
    ('1017HL', '1855', '09411')
    """
    if not postcode:
        return ""
    return re.sub(r"[^0-9A-Za-z]", "", _POSTCODE_PREFIX.sub("", unidecode(postcode))).upper()


def _runs(words: list[str], longest: int = 3) -> set[str]:
    """Every run of up to ``longest`` adjacent words, joined without spaces."""
    return {"".join(words[i:i + n]) for n in range(1, longest + 1)
            for i in range(len(words) - n + 1)}


def postcode_in(postcode: str | None, text: str | None) -> bool:
    """Whether ``postcode`` is written in ``text`` (however spaced or hyphenated).

    >>> postcode_in("BT1 3EA", "1 Donegall Quay, BELFAST, BT1 3EA")
    True
    >>> postcode_in("09411", "CHEMIKÓW 7, 09-411 PŁOCK"), postcode_in("75007", "75006 PARIS")
    (True, False)
    """
    key = postcode_key(postcode)
    return bool(key) and key in {w.upper() for w in _runs(fold_words(text))}


def _contains(words: list[str], part: list[str]) -> bool:
    n = len(part)
    return n > 0 and any(words[i:i + n] == part for i in range(len(words) - n + 1))


def city_in(city: str | None, text: str | None) -> bool:
    """Whether ``city`` is written, as whole words, in ``text``.

    >>> city_in("Płock", "CHEMIKÓW 7, 09-411 PŁOCK"), city_in("Paris", "75006 PARISIS")
    (True, False)
    """
    return _contains(fold_words(text), fold_words(city))


def same_city(a: str | None, b: str | None) -> bool:
    """Whether two city names are one city: equal folded, or one is the other with more words
    (``Dublin 4`` and ``Dublin``, ``MODENA MO`` and ``Modena``, ``Frankfurt am Main``).

    >>> same_city("München", "MUENCHEN"), same_city("Dublin 4", "dublin")
    (True, True)
    >>> same_city("Lyon", "Paris")
    False
    """
    wa, wb = fold_words(a), fold_words(b)
    return bool(wa and wb) and (_contains(wa, wb) or _contains(wb, wa))


def _street_parts(street: str) -> tuple[frozenset[str], str]:
    """The house numbers of a street address, and its name with short words read in full."""
    words = []
    for w in fold_words(street):
        if w.endswith("str") and len(w) > 3:  # Hauptstr. -> hauptstrasse
            w = w[:-3] + "strasse"
        words.append(_fold(_STREET_WORDS.get(w, w)))
    numbers = frozenset(re.sub(r"^0+(?=\d)", "", w) for w in words if w[:1].isdigit())
    return numbers, " ".join(w for w in words if w and not w[:1].isdigit())


def same_street(a: str | None, b: str | None) -> bool | None:
    """Whether two street addresses are the same (None: one is missing). Where both give
    house numbers they must share one (``5-7`` and ``5``, ``Flat 2, 10`` and ``10``); the names
    must score at least :data:`STREET_THRESHOLD`.

    >>> same_street("Hauptstr. 5", "Hauptstraße 5"), same_street("Hauptstr. 5", "Hauptstr. 7")
    (True, False)
    >>> same_street("VIJZELSTRAAT 00068", "Vijzelstraat 68"), same_street("Gran Via 28", None)
    (True, None)
    """
    if not fold_words(a) or not fold_words(b):
        return None
    (na, ta), (nb, tb) = _street_parts(a or ""), _street_parts(b or "")
    if na and nb and not na & nb:
        return False
    if not ta or not tb:
        return bool(na and nb)
    return max(fuzz.ratio(ta, tb), fuzz.token_sort_ratio(ta, tb)) / 100 >= STREET_THRESHOLD


@dataclass(frozen=True)
class AddressMatch:
    """The outcome of :func:`compare_address`.

    Each part is ``match``, ``mismatch`` (the source gives the part, and another one),
    ``not_found`` (the source's text does not contain it) or None (not compared: a side lacks
    it). ``verdict``: ``match`` (postcode and city confirmed, the street not contradicted),
    ``mismatch`` (the source holds another address) or ``unconfirmed``.
    """

    postcode: str | None
    city: str | None
    street: str | None
    verdict: str


def _status(same: bool | None) -> str | None:
    return None if same is None else ("match" if same else "mismatch")


def compare_address(declared: dict[str, str | None], *, street: str | None = None,
                    postcode: str | None = None, city: str | None = None,
                    text: str | None = None) -> AddressMatch:
    """Compare the ``declared`` address (``street``, ``postcode``, ``city``) with the address a
    source holds, given as parts, as one line of ``text``, or both (parts win).

    Postcode and city decide. A part the source gives separately is equal or not; a part it
    only writes in its text is found in it or not. The address is a ``match`` when postcode
    and city are both confirmed (and the street, compared only when both sides give one
    separately, agrees); a ``mismatch`` when the source gives another postcode, when neither
    postcode nor city is found in its text, or when the street differs in the same town; else
    ``unconfirmed`` (a city spelt another way, ``Bruxelles`` for ``Brussel``, beside the same
    postcode, or a source that gives no postcode: nobody is asked to review a spelling).

    >>> declared = {"street": "4 rue du Four", "postcode": "75006", "city": "Paris"}
    >>> compare_address(declared, text="4 RUE DU FOUR\\n75006 PARIS").verdict
    'match'
    >>> compare_address(declared, text="12 RUE DES JOUETS 69002 LYON").verdict
    'mismatch'
    >>> compare_address(declared, street="18 avenue de la Gare", postcode="75006",
    ...                 city="Paris").verdict
    'mismatch'
    """
    d_postcode, d_city = declared.get("postcode"), declared.get("city")
    if postcode_key(postcode) and postcode_key(d_postcode):
        pc = _status(postcode_key(postcode) == postcode_key(d_postcode))
    elif text and postcode_key(d_postcode):
        pc = "match" if postcode_in(d_postcode, text) else "not_found"
    else:
        pc = None
    if fold_words(city) and fold_words(d_city):
        ct = _status(same_city(city, d_city))
    elif text and fold_words(d_city):
        ct = "match" if city_in(d_city, text) else "not_found"
    else:
        ct = None
    st = _status(same_street(declared.get("street"), street))
    if pc == "mismatch" or (pc in ("not_found", "mismatch") and ct in ("not_found", "mismatch")):
        verdict = "mismatch"
    elif pc == "match" and ct == "match":
        verdict = "mismatch" if st == "mismatch" else "match"
    else:
        verdict = "unconfirmed"
    return AddressMatch(pc, ct, st, verdict)


def registered_company_form(name: str | None, country: str | None = None) -> str | None:
    """The legal form in ``name`` if it is one only a registered company (or partnership) can
    carry, such as ``SAS``, ``GmbH``, ``Ltd`` or ``Sp. z o.o.``; None for no form, or for a
    form a sole trader or an unregistered partnership carries (:data:`UNREGISTERED_FORMS`).

    >>> registered_company_form("Boulangerie Martin SAS", "FR")
    'SAS'
    >>> registered_company_form("Zoë Privat-Händler", "DE") is None
    True
    >>> registered_company_form("Jean Dupont EI", "FR") is None
    True
    """
    if not name:
        return None
    form = normalise(name, country).legal_form
    return None if form is None or form in UNREGISTERED_FORMS else form


#: Forms of the table that do not imply an entry in a trade or company register: sole
#: traders' designations (France's EI, Norway's ENK, Sweden's enskild firma, Estonia's FIE,
#: Lithuania's individuali įmonė, Latvia's IK, Romania's PFA, Slovenia's s.p., Bulgaria's ET)
#: and Germany's civil-law partnership (GbR). Every other form of ``legal_forms.csv`` is a
#: company, a commercial partnership, a cooperative or a registered merchant (``e.K.``,
#: ``e.U.``), all of which exist through a register entry.
UNREGISTERED_FORMS = frozenset({"EI", "EIRL", "ENK", "EF", "FIE", "II", "IK", "PFA", "SP",
                                "ET", "GBR"})
