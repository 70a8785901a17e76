"""BICs: the ISO 9362 format, and whether a BIC belongs to the IBAN's bank.

**Format** (``bic_format``): 8 or 11 characters after the same clean-up as IBANs (spaces,
invisible and full-width characters, lowercase): 4 letters or digits for the institution
(ISO 9362:2022 allows digits there), 2 letters of an ISO 3166 country (``XK``, Kosovo,
included), 2 letters or digits for the location, optionally 3 for the branch.

**Consistency with the IBAN** (``bic_iban_consistency``):

1. the BIC's country must be the IBAN's; French overseas territories, Åland and the Crown
   Dependencies count as their parent country's (:data:`services.payment.ibans.PARENT`), as
   their banks use either code — else ``fail`` (``BIC_COUNTRY_MISMATCH``);
2. the bank directory's BICs for the IBAN's bank code (schwifty's bank registry): the same BIC
   (``ABCDEFGH`` and ``ABCDEFGHXXX`` are one) is a ``pass``, and so is a BIC the directory lists
   for this bank code; the same institution (the first 8 characters) under another branch, its
   head office or its ``XXX`` code, is a ``warning`` (``BIC_OTHER_BRANCH``); another institution
   is a ``fail`` (``BIC_BANK_MISMATCH``);
3. without a directory entry for the bank code, the consistency is ``not_available``.
"""

from __future__ import annotations

import functools
import re

from schwifty import BIC

from services.payment import codes
from services.payment.ibans import (
    FAIL,
    NOT_AVAILABLE,
    PASS,
    WARNING,
    Check,
    IbanResult,
    clean,
    directory_country,
)

_STRUCTURE = re.compile(r"[A-Z0-9]{4}[A-Z]{2}[A-Z0-9]{2}(?:[A-Z0-9]{3})?")
#: Kosovo's user-assigned code, which SWIFT uses in BICs but ISO 3166 does not list.
EXTRA_COUNTRIES = frozenset({"XK"})
_NO_BIC = Check("bic_format", NOT_AVAILABLE, "No BIC was given.")
_NO_BIC_CONSISTENCY = Check("bic_iban_consistency", NOT_AVAILABLE, "No BIC was given.")


def compact(raw: str) -> str:
    """Clean up a BIC like an IBAN (spaces, invisible and full-width characters, case).

    >>> compact(" cobade ff xxx ")
    'COBADEFFXXX'
    >>> compact("\\uff23\\uff2f\\uff22\\uff21DEFF")  # full-width "COBA"
    'COBADEFF'
    """
    return clean(raw).text


def full(bic: str) -> str:
    """The 11-character form: an 8-character BIC is the same as its ``XXX`` branch.

    >>> full("COBADEFF"), full("COBADEFF370")
    ('COBADEFFXXX', 'COBADEFF370')
    """
    return bic + "XXX" if len(bic) == 8 else bic


@functools.lru_cache(maxsize=4096)
def _country_known(country: str) -> bool:
    return country in EXTRA_COUNTRIES or BIC("AAAA" + country + "AA", allow_invalid=True).country \
        is not None


def check_format(raw: str | None) -> tuple[str | None, Check]:
    """Clean up and check ``raw``; return the BIC (None if absent) and the ``bic_format`` check.

    >>> check_format("deutdeff")[1].result
    'pass'
    >>> check_format("TESTXK22")[1].result  # Kosovo
    'pass'
    >>> check_format("DEUTDEF")[1].code
    'BIC_FORMAT'
    """
    if raw is None:
        return None, _NO_BIC
    cleaned = clean(raw)
    bic = cleaned.text
    if cleaned.confusables:
        where = "; ".join(f"character {p} is {d}" for p, d in cleaned.confusables)
        return bic, Check("bic_format", FAIL, f"Letters or digits of another script that look "
                          f"like Latin ones: {where}.", codes.BIC_FORMAT)
    if cleaned.invalid or not bic:
        return bic, Check("bic_format", FAIL, "A BIC has only A-Z and 0-9 (spaces are ignored).",
                          codes.BIC_FORMAT)
    if len(bic) not in (8, 11):
        return bic, Check("bic_format", FAIL, f"A BIC has 8 or 11 characters; this one has "
                          f"{len(bic)}.", codes.BIC_FORMAT)
    if not _STRUCTURE.fullmatch(bic):
        return bic, Check("bic_format", FAIL, "A BIC is 4 letters or digits (institution), 2 "
                          "letters (country), 2 letters or digits (location) and optionally 3 "
                          "(branch); characters 5 and 6 must be letters.", codes.BIC_FORMAT)
    if not _country_known(bic[4:6]):
        return bic, Check("bic_format", FAIL, f"'{bic[4:6]}' (characters 5 and 6) is not a "
                          "country code.", codes.BIC_FORMAT)
    return bic, Check("bic_format", PASS, f"ISO 9362: institution {bic[:4]}, country "
                      f"{bic[4:6]}, location {bic[6:8]}"
                      + (f", branch {bic[8:]}." if len(bic) == 11 else "."))


def _directory_codes(bic: str) -> list[str]:
    """The bank codes the directory lists for ``bic`` (8 and 11 characters tried)."""
    return BIC(bic, allow_invalid=True).domestic_bank_codes


def check_consistency(bic: str | None, format_check: Check, iban: IbanResult) -> Check:
    """The ``bic_iban_consistency`` check of ``bic`` against the IBAN (module docstring)."""
    name = "bic_iban_consistency"
    if bic is None:
        return _NO_BIC_CONSISTENCY
    if format_check.result != PASS:
        return Check(name, NOT_AVAILABLE, "Not checked: the BIC's format is wrong.")
    if not iban.well_formed or iban.country_code is None:
        return Check(name, NOT_AVAILABLE, "Not checked: the IBAN is not well formed.")
    bic_cc, iban_cc = bic[4:6], iban.country_code
    if directory_country(bic_cc) != directory_country(iban_cc):
        return Check(name, FAIL, f"The BIC is of a bank in {bic_cc}, the IBAN of an account in "
                     f"{iban_cc}.", codes.BIC_COUNTRY_MISMATCH)
    bank = iban.bank
    if bank is None or not bank.bics:
        return Check(name, NOT_AVAILABLE, "Not checked: the bank directory has no BIC for the "
                     "IBAN's bank code.")
    given = full(bic)
    if given in bank.bics:
        return Check(name, PASS, f"The bank directory gives this BIC for bank code "
                     f"{iban.bank_code} ({bank.name}).")
    if iban.bank_code in _directory_codes(bic):
        return Check(name, PASS, f"The bank directory lists this BIC for bank code "
                     f"{iban.bank_code}.")
    expected = bank.bic or min(bank.bics)
    if any(b[:8] == given[:8] for b in bank.bics):
        return Check(name, WARNING, f"Same institution ({bic[:8]}), but the bank directory "
                     f"gives {expected} for bank code {iban.bank_code} ({bank.name}).",
                     codes.BIC_OTHER_BRANCH)
    return Check(name, FAIL, f"The bank directory gives {expected} ({bank.name}) for bank code "
                 f"{iban.bank_code}, not {bic}.", codes.BIC_BANK_MISMATCH)
