"""IBANs: explicit clean-up, then each structural check on its own, with schwifty's data.

**Clean-up** (:func:`clean`) does exactly this, and nothing else:

1. Unicode NFKC, so full-width letters and digits (U+FF21 for ``A`` ...) and other
   compatibility forms become ASCII;
2. invisible format characters are removed (zero-width space and joiners, word joiner, BOM,
   soft hyphen, direction marks: Unicode category ``Cf``);
3. a leading ``IBAN`` (any case, optionally followed by ``:``) is removed; no IBAN country code
   starts with ``IB``, so this never eats a real IBAN;
4. every kind of white space is removed (spaces, no-break and thin spaces, tabs, new lines);
5. ASCII letters are upper-cased.

What is left must be ``A-Z`` and ``0-9``. Letters and digits of another script (Cyrillic A,
U+0410; Greek Omicron, U+039F; Arabic-Indic digits ...) are *not* transliterated: they often
look exactly like a Latin character, so they are rejected with their own code,
``IBAN_CONFUSABLE_CHARACTERS``. Any other character (``-``, ``/``, ``Ä``) is
``IBAN_INVALID_CHARACTERS``.

**Checks** (:func:`check`), listed in this order in the answer; they run country first, then
length, BBAN format, checksum, and once one fails the ones that depend on it are
``not_available``:

- ``length``: the country's IBAN length;
- ``format``: two letters of a country that uses IBANs and two check digits, then the BBAN in
  the country's format (schwifty's copy of the SWIFT IBAN registry);
- ``checksum``: ISO 7064 mod 97-10 over the whole IBAN (:func:`checksum_ok`: computed here,
  with one ``str.translate``, as it is the hot path; the tests hold it to schwifty's verdicts);
- ``national_check_digits``: the country's own check digits inside the BBAN, with schwifty's
  algorithm for the country or, in Germany, for the bank's method. Where schwifty has no
  algorithm the result is ``not_available`` and says so: it never passes silently;
- ``bank_code``: the bank in schwifty's bank directory (``warning`` when the country has a
  directory but not this bank code, ``not_available`` when it has none).

French overseas departments and collectivities, Åland and the Crown Dependencies have IBAN
country codes of their own but their parent's banks and BBAN format; their bank directory and
national check digits are the parent's (:data:`PARENT`).

Nothing here logs, and no message carries the IBAN: the details name positions and lengths.
"""

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from schwifty import BIC, exceptions, registry
from schwifty.checksum import algorithms
from schwifty.domain import Component, IBANSpec

from services.payment import codes
from services.payment.results import CheckInfo

PASS, FAIL, NOT_AVAILABLE, WARNING = "pass", "fail", "not_available", "warning"

#: Territories with an IBAN country code of their own whose banks and BBAN are their parent's.
PARENT: dict[str, str] = {
    **dict.fromkeys(("GF", "GP", "MQ", "RE", "YT", "PM", "BL", "MF", "NC", "PF", "WF", "TF"), "FR"),
    "AX": "FI",
    **dict.fromkeys(("GG", "JE", "IM"), "GB"),
}

#: ISO 13616 numbering of letters for the mod 97-10 check: A=10 ... Z=35.
_LETTER_VALUES = str.maketrans({chr(c): str(c - 55) for c in range(ord("A"), ord("Z") + 1)})
_SPEC_PART = re.compile(r"(\d+)(!?)([nace])")
_KINDS = {"n": "digits", "a": "capital letters", "c": "letters or digits", "e": "spaces"}
# schwifty's German check-digit methods keep the last remainder on the (shared) algorithm
# object between two steps of one computation, so two threads must not run them at once.
_NATIONAL_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class Check:
    """The outcome of one check: ``result`` is pass, fail, not_available or warning."""

    name: str
    result: str
    detail: str
    code: str | None = None
    _dict: CheckInfo = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Passing checks are shared per country (see _passes); building their dict once keeps
        # that cost out of every request.
        object.__setattr__(self, "_dict", {"name": self.name, "result": self.result,
                                           "detail": self.detail, "code": self.code})

    def as_dict(self) -> CheckInfo:
        """The check as the API shows it (shared between answers: read it, do not change it)."""
        return self._dict


@dataclass(frozen=True, slots=True)
class Cleaned:
    """Input after :func:`clean`: the text, and the characters that are not A-Z or 0-9.

    Positions are 1-based, counted in ``text`` (after spaces are removed).
    """

    text: str
    confusables: tuple[tuple[int, str], ...] = ()
    invalid: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True, slots=True)
class BankEntry:
    """What the bank directory says about one bank code."""

    name: str | None
    bic: str | None  # the directory's preferred BIC (head office over branches)
    bics: frozenset[str]  # every BIC listed for the code, as 11 characters
    checksum_algo: str


@dataclass(slots=True)
class IbanResult:
    """The checks of one IBAN. ``text`` is the normalised IBAN: personal data, never log it."""

    text: str
    country_code: str | None
    checks: list[Check]
    well_formed: bool = False  # format, length and checksum passed
    bank_code: str | None = None
    bank: BankEntry | None = None
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        """No check failed."""
        return not self.errors


# -- clean-up -------------------------------------------------------------------------------


def _describe(char: str) -> str:
    name = unicodedata.name(char, f"U+{ord(char):04X}")
    return f"{name} (U+{ord(char):04X})"


def clean(raw: str) -> Cleaned:
    """Apply the clean-up described in the module docstring.

    >>> clean(" iban: de89 3704 0044 0532 0130 00\\n").text
    'DE89370400440532013000'
    >>> clean("\\uff24\\uff25\\uff18\\uff19 3704 0044 0532 0130 00").text  # full-width "DE89"
    'DE89370400440532013000'
    >>> clean("DE89\\u200b3704\\u200d0044\\ufeff0532\\u00a00130\\u202f00").text  # invisible
    'DE89370400440532013000'
    >>> clean("D\\u0415893704004405320130 00").confusables  # Cyrillic Ie for E
    ((2, 'CYRILLIC CAPITAL LETTER IE (U+0415)'),)
    >>> clean("DE89-3704-0044").invalid
    ((5, "'-'"), (10, "'-'"))
    """
    text = raw
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text)
        text = "".join(c for c in text if unicodedata.category(c) != "Cf")
    text = text.strip()
    if text[:4].upper() == "IBAN":
        text = text[4:].lstrip()
        if text[:1] == ":":
            text = text[1:]
    text = "".join(text.split())  # every kind of white space (str.isspace)
    if text.isascii():
        text = text.upper()
        if text.isalnum() or not text:
            return Cleaned(text)
    confusables: list[tuple[int, str]] = []
    invalid: list[tuple[int, str]] = []
    out = []
    for pos, char in enumerate(text, 1):
        if char.isascii():
            char = char.upper()
            if char.isalnum():
                out.append(char)
                continue
            invalid.append((pos, repr(char)))
        elif unicodedata.category(char)[0] == "L" or unicodedata.category(char) == "Nd":
            if unicodedata.name(char, "").startswith("LATIN"):
                invalid.append((pos, _describe(char)))  # 'Ä': no look-alike, just not allowed
            else:
                confusables.append((pos, _describe(char)))
        else:
            invalid.append((pos, _describe(char)))
        out.append(char)
    return Cleaned("".join(out), tuple(confusables), tuple(invalid))


def checksum_ok(iban: str) -> bool:
    """The ISO 7064 mod 97-10 check of a clean, upper-case IBAN.

    Computed as the standard says (check digits = 98 - (BBAN + country + "00") mod 97), not as
    ``number mod 97 == 1``, which would also accept the aliases 00, 01 and 99.

    >>> checksum_ok("DE89370400440532013000"), checksum_ok("DE88370400440532013000")
    (True, False)
    >>> checksum_ok("GB98NWBK60161331920048"), checksum_ok("GB01NWBK60161331920048")  # alias
    (True, False)
    """
    remainder = int((iban[4:] + iban[:2]).translate(_LETTER_VALUES) + "00") % 97
    return iban[2:4].isdigit() and 98 - remainder == int(iban[2:4])


def compact(raw: str) -> str:
    """The IBAN as stored and compared: :func:`clean`'s text.

    >>> compact("IBAN DE89 3704 0044 0532 0130 00")
    'DE89370400440532013000'
    """
    return clean(raw).text


def mask(text: str) -> str:
    """Show only the country code and the last four characters.

    >>> mask("DE89370400440532013000")
    'DE****3000'
    >>> mask("DE89")
    'DE****'
    >>> mask("")
    '****'
    """
    if len(text) <= 6:
        return text[:2] + "****"
    return text[:2] + "****" + text[-4:]


# -- schwifty's data ------------------------------------------------------------------------


@functools.lru_cache(maxsize=512)
def spec(country_code: str) -> IBANSpec | None:
    """The IBAN format of ``country_code``, or None if the country does not use IBANs."""
    try:
        return registry.get_iban_spec(country_code)
    except exceptions.InvalidCountryCode:
        return None


def directory_country(country_code: str) -> str:
    """The country whose bank directory and check digits ``country_code``'s IBANs use.

    >>> directory_country("GP"), directory_country("DE")
    ('FR', 'DE')
    """
    return PARENT.get(country_code, country_code)


@functools.lru_cache(maxsize=512)
def has_directory(country_code: str) -> bool:
    """Whether schwifty has a bank directory for ``country_code`` (or its parent)."""
    return bool(registry.get_banks_by_country(directory_country(country_code)))


@functools.lru_cache(maxsize=65536)
def bank_entry(country_code: str, bank_code: str) -> BankEntry | None:
    """The directory's bank for ``bank_code`` in ``country_code``, or None (cached)."""
    country = directory_country(country_code)
    banks = registry.get_banks_by_code(country, bank_code)
    if not banks:
        return None
    # The institution's own record is flagged primary; schwifty's IBAN.bank prefers it too.
    bank = max(banks, key=lambda b: b.primary)
    try:
        preferred: str | None = str(BIC.from_bank_code(country, bank_code))
    except exceptions.SchwiftyException:
        preferred = None
    bics = frozenset(b.bic if len(b.bic) == 11 else b.bic + "XXX" for b in banks if b.bic)
    return BankEntry(bank.name, preferred, bics, bank.checksum_algo)


def load_directory() -> int:
    """Load every country's bank directory now (schwifty loads lazily); return the bank count.

    Called once per process at start-up so that no request pays for it.
    """
    return len(registry.get_all_banks())


def describe_spec(bban_spec: str) -> str:
    """A BBAN format in words.

    >>> describe_spec("4!a6!n8!n")
    '4 capital letters, 6 digits, 8 digits'
    """
    return ", ".join(
        f"{n} {_KINDS[kind]}" if fixed else f"up to {n} {_KINDS[kind]}"
        for n, fixed, kind in _SPEC_PART.findall(bban_spec)
    )


def _first_misfit(bban: str, bban_spec: str) -> tuple[int, str] | None:
    """The first BBAN position (0-based) that breaks ``bban_spec``, and what belongs there."""
    pos = 0
    for n, fixed, kind in _SPEC_PART.findall(bban_spec):
        if not fixed:
            return None  # variable-length parts: no position to point at
        for char in bban[pos:pos + int(n)]:
            ok = (char.isdigit() if kind == "n" else "A" <= char <= "Z" if kind == "a"
                  else char.isalnum() if kind == "c" else char == " ")
            if not ok:
                return pos, _KINDS[kind][:-1]
            pos += 1
    return None


# -- the checks -----------------------------------------------------------------------------

_ORDER = ("length", "format", "checksum", "national_check_digits", "bank_code")


def _result(text: str, country: str | None, done: list[Check], reason: str) -> IbanResult:
    """Fill the checks after a failure with ``not_available``, in the API's order."""
    by_name = {c.name: c for c in done}
    checks = [by_name.get(name) or Check(name, NOT_AVAILABLE, reason) for name in _ORDER]
    result = IbanResult(text, country, checks)
    result.errors = [c.code for c in checks if c.result == FAIL and c.code]
    result.warnings = [c.code for c in checks if c.result == WARNING and c.code]
    return result


def check(raw: str) -> IbanResult:
    """Clean up ``raw`` and run every IBAN check (see the module docstring).

    >>> r = check("DE89 3704 0044 0532 0130 00")
    >>> r.valid, [(c.name, c.result) for c in r.checks][:3], r.bank.name
    (True, [('length', 'pass'), ('format', 'pass'), ('checksum', 'pass')], 'Commerzbank')
    >>> check("DE89 3704 0044 0532 0130 01").errors
    ['IBAN_CHECKSUM']
    """
    cleaned = clean(raw)
    text = cleaned.text
    cc = text[:2] if text[:2].isascii() and text[:2].isalpha() else None
    if cleaned.confusables:
        where = "; ".join(f"character {p} is {d}" for p, d in cleaned.confusables)
        return _result(text, cc, [Check(
            "format", FAIL, f"Letters or digits of another script that look like Latin ones: "
            f"{where}. Type the IBAN with A-Z and 0-9 only.", codes.IBAN_CONFUSABLE_CHARACTERS,
        )], "Not checked: the IBAN has characters of another script.")
    if cleaned.invalid:
        where = "; ".join(f"character {p} is {d}" for p, d in cleaned.invalid)
        return _result(text, cc, [Check(
            "format", FAIL, f"An IBAN has only A-Z and 0-9 (spaces are ignored): {where}.",
            codes.IBAN_INVALID_CHARACTERS,
        )], "Not checked: the IBAN has characters that are not allowed.")
    if not text:
        return _result(text, None, [Check(
            "format", FAIL, "The IBAN is empty once spaces are removed.", codes.IBAN_FORMAT,
        )], "Not checked: the IBAN is empty.")
    if cc is None or len(text) < 4 or not text[2:4].isdigit():
        return _result(text, cc, [Check(
            "format", FAIL, "An IBAN starts with a two-letter country code and two check "
            "digits (e.g. 'DE89').", codes.IBAN_FORMAT,
        )], "Not checked: the IBAN does not start with a country code and check digits.")
    s = spec(cc)
    if s is None:
        return _result(text, cc, [Check(
            "format", FAIL, f"'{cc}' is not the code of a country that uses IBANs.",
            codes.IBAN_COUNTRY_UNKNOWN,
        )], f"Not checked: no IBAN format is known for '{cc}'.")

    checks: list[Check] = []
    if len(text) != s.iban_length:
        checks.append(Check(
            "length", FAIL, f"IBANs of {cc} have {s.iban_length} characters; this one has "
            f"{len(text)}.", codes.IBAN_LENGTH))
        return _result(text, cc, checks, "Not checked: the length is wrong.")
    length_pass, format_pass, checksum_pass = _passes(cc)
    checks.append(length_pass)

    bban = text[4:]
    if not s.regex.match(bban):
        misfit = _first_misfit(bban, s.bban_spec)
        where = (f" Character {misfit[0] + 5} should be a {misfit[1]}." if misfit else "")
        checks.append(Check(
            "format", FAIL, f"After the check digits, IBANs of {cc} have "
            f"{describe_spec(s.bban_spec)}.{where}", codes.IBAN_FORMAT))
        return _result(text, cc, checks, "Not checked: the format is wrong.")
    checks.append(format_pass)

    if not checksum_ok(text):
        checks.append(Check(
            "checksum", FAIL, "The IBAN check digits do not match the rest of the IBAN (ISO 7064 "
            "mod 97-10): a character is probably mistyped or two are swapped.",
            codes.IBAN_CHECKSUM))
        return _result(text, cc, checks, "Not checked: the IBAN check digits are wrong.")
    checks.append(checksum_pass)

    parent, _, lookup = _layout(cc)
    bank_code = "".join(bban[a:b] for a, b in lookup)
    bank = bank_entry(cc, bank_code) if bank_code else None
    national = _national(cc, bban, bank)
    checks.append(national)
    if bank is not None:
        bank_check = Check("bank_code", PASS, f"Bank code {bank_code}: {bank.name}.")
    elif not bank_code:
        bank_check = Check("bank_code", NOT_AVAILABLE, f"IBANs of {cc} carry no bank code "
                           "that a directory could look up.")
    elif has_directory(cc):
        bank_check = Check(
            "bank_code", WARNING, f"The bank directory of {parent} has no bank with code "
            f"{bank_code}; ask the trader to check the IBAN.", codes.BANK_CODE_UNKNOWN)
    else:
        bank_check = Check("bank_code", NOT_AVAILABLE, f"No bank directory is available for "
                           f"{parent}; the bank code was not looked up.")
    checks.append(bank_check)
    return IbanResult(
        text, cc, checks, well_formed=True, bank_code=bank_code or None, bank=bank,
        errors=[c.code for c in (national,) if c.result == FAIL and c.code],
        warnings=[c.code for c in (format_pass, bank_check) if c.result == WARNING and c.code],
    )


@functools.lru_cache(maxsize=512)
def _layout(cc: str) -> tuple[str, IBANSpec, tuple[tuple[int, int], ...]]:
    """Whose rules ``cc`` follows: the country, its BBAN layout and where the bank-lookup key is.

    A territory in :data:`PARENT` follows its parent when their BBAN formats are the same.
    """
    s = spec(cc)
    assert s is not None
    parent = directory_country(cc)
    ps = spec(parent) if parent != cc else s
    if ps is None or ps.bban_spec != s.bban_spec:
        parent, ps = cc, s
    return parent, ps, _slices(ps, tuple(ps.bic_lookup_components or [Component.BANK_CODE]))


def _slices(s: IBANSpec, components: tuple[Component, ...]) -> tuple[tuple[int, int], ...]:
    """Where ``components`` are in a BBAN of ``s`` (start, end), in order."""
    return tuple((s.positions[c].start, s.positions[c].end) for c in components
                 if c in s.positions)


@functools.lru_cache(maxsize=512)
def _passes(cc: str) -> tuple[Check, Check, Check]:
    """The passing length, format and checksum checks of ``cc`` (the same for every IBAN)."""
    s = spec(cc)
    assert s is not None
    if s.aspirational:
        fmt = Check("format", WARNING, f"The format of {cc} is announced but not yet in the "
                    "SWIFT IBAN registry; banks may refuse it.", codes.IBAN_COUNTRY_ASPIRATIONAL)
    else:
        fmt = Check("format", PASS, f"The format of {cc}: {describe_spec(s.bban_spec)}.")
    return (Check("length", PASS, f"{s.iban_length} characters, as in {cc}."), fmt,
            Check("checksum", PASS, "The IBAN check digits match (ISO 7064 mod 97-10)."))


@dataclass(frozen=True, slots=True)
class _NationalRule:
    """How one country (and bank method) checks its national digits, with the answers ready."""

    algo: Any
    parts: tuple[tuple[tuple[int, int], ...], ...]  # where each input of the algorithm is
    digits: tuple[tuple[int, int], ...]  # where the national check digits are
    not_available: Check | None
    passed: Check | None
    failed: Check | None


@functools.lru_cache(maxsize=1024)
def _national_rule(cc: str, algo_name: str) -> _NationalRule:
    parent, s, _ = _layout(cc)
    algo = algorithms.get(f"{parent}:{algo_name}")
    if algo is None:
        if any(key.startswith(parent + ":") for key in algorithms):
            why = (f"the check-digit method of {parent} depends on the bank, and the bank code "
                   "is not in the directory")
        else:
            why = f"no check-digit algorithm is known for {parent}"
        return _NationalRule(None, (), (), Check("national_check_digits", NOT_AVAILABLE,
                             f"Not verified: {why}. This is not a pass."), None, None)
    via = f" (the rules of {parent})" if parent != cc else ""
    return _NationalRule(
        algo,
        tuple(_slices(s, (c,)) for c in algo.accepts),
        _slices(s, (Component.NATIONAL_CHECKSUM_DIGITS,)),
        None,
        Check("national_check_digits", PASS, f"The national check digits match{via}."),
        Check("national_check_digits", FAIL, f"The national check digits inside the account "
              f"number do not match{via}: a digit is probably mistyped.",
              codes.IBAN_NATIONAL_CHECKSUM),
    )


def _national(cc: str, bban: str, bank: BankEntry | None) -> Check:
    """The national check digits, with schwifty's algorithm; ``not_available`` without one."""
    rule = _national_rule(cc, bank.checksum_algo if bank is not None else "default")
    if rule.not_available is not None:
        return rule.not_available
    expected = "".join(bban[a:b] for a, b in rule.digits)
    parts = ["".join(bban[a:b] for a, b in where) for where in rule.parts]
    try:
        with _NATIONAL_LOCK:
            ok = rule.algo.validate(parts, expected)
    except (exceptions.SchwiftyException, ValueError, IndexError):
        ok = False
    answer = rule.passed if ok else rule.failed
    assert answer is not None  # a rule with an algorithm has both answers
    return answer
