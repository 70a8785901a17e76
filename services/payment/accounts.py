"""Payment accounts without an IBAN: an account number with the bank's BIC, or another reference.

Much of the world pays out to accounts that have no IBAN (the United States, China, India...),
and to wallets and payment processors. A request says which with ``kind``:

- ``iban`` (the default): the IBAN checks of :mod:`.ibans`;
- ``account``: an account number, the bank's BIC (SWIFT code) and the account's country. What
  can be checked without the bank: the account number's characters (``account_number_format``:
  A-Z and 0-9 once spaces and hyphens are dropped, at most 34, the longest an account number
  in a SWIFT transfer may be), the BIC's ISO 9362 format (``bic_format``, :mod:`.bics`) and
  that the BIC is of a bank in the account's country (``bic_country``: schwifty's reading of
  the BIC, overseas territories counting as their parent country's like for IBANs). A country
  whose accounts have IBANs gets the warning ``ACCOUNT_COUNTRY_USES_IBAN``: ask for the IBAN;
- ``other``: a wallet or payment-processor reference (``reference``, optionally ``provider``),
  which nothing outside the processor can check.

Neither proves that the account exists or is the trader's: the gateway leaves 30(1)(c)
``unverified`` for them (``PAYMENT_ACCOUNT_NOT_IBAN``). Account numbers and references are
personal data like IBANs: only :func:`mask`-ed forms reach logs and answers.
"""

from __future__ import annotations

from schwifty import BIC

from services.payment import codes
from services.payment.ibans import FAIL, NOT_AVAILABLE, PASS, WARNING, Check, clean, spec
from services.payment.ibans import directory_country as _parent

KINDS = ("iban", "account", "other")
#: The longest account number a SWIFT transfer carries (field 59, ``/34x``).
MAX_ACCOUNT_LENGTH = 34


def compact_account(raw: str) -> str:
    """An account number cleaned up like an IBAN (white space, invisible and full-width
    characters, case), hyphens dropped too.

    >>> compact_account(" 1234-5678 9012 ")
    '123456789012'
    """
    return clean(raw.replace("-", "")).text


def check_account_number(raw: str) -> tuple[str, Check]:
    """Clean up and check ``raw``; return the account number and ``account_number_format``.

    >>> check_account_number("6222 0210 0104 3210 123")[1].result
    'pass'
    >>> check_account_number("12.34")[1].code
    'ACCOUNT_NUMBER_FORMAT'
    """
    name = "account_number_format"
    cleaned = clean(raw.replace("-", ""))
    number = cleaned.text
    if cleaned.confusables:
        where = "; ".join(f"character {p} is {d}" for p, d in cleaned.confusables)
        return number, Check(name, FAIL, f"Letters or digits of another script that look like "
                             f"Latin ones: {where}.", codes.ACCOUNT_NUMBER_FORMAT)
    if cleaned.invalid or not number:
        where = "; ".join(f"character {p} is {d}" for p, d in cleaned.invalid)
        return number, Check(name, FAIL, "An account number has only A-Z and 0-9 (spaces and "
                             "hyphens are ignored)" + (f": {where}." if where else "."),
                             codes.ACCOUNT_NUMBER_FORMAT)
    if len(number) > MAX_ACCOUNT_LENGTH:
        return number, Check(name, FAIL, f"An account number has at most {MAX_ACCOUNT_LENGTH} "
                             f"characters; this one has {len(number)}.",
                             codes.ACCOUNT_NUMBER_FORMAT)
    return number, Check(name, PASS, f"{len(number)} letters or digits.")


def check_bic_country(bic: str | None, format_check: Check, country: str) -> Check:
    """``bic_country``: whether the BIC (read by schwifty) is of a bank in ``country``.

    >>> check_bic_country("BKCHCNBJ", Check("bic_format", PASS, ""), "CN").result
    'pass'
    >>> check_bic_country("CHASUS33", Check("bic_format", PASS, ""), "CN").code
    'BIC_ACCOUNT_COUNTRY_MISMATCH'
    """
    name = "bic_country"
    if bic is None or format_check.result != PASS:
        return Check(name, NOT_AVAILABLE, "Not checked: the BIC's format is wrong.")
    bic_cc = BIC(bic, allow_invalid=True).country_code
    if _parent(bic_cc) != _parent(country):
        return Check(name, FAIL, f"The BIC is of a bank in {bic_cc}, the account is in "
                     f"{country}.", codes.BIC_ACCOUNT_COUNTRY_MISMATCH)
    return Check(name, PASS, f"The BIC is of a bank in {bic_cc}, the account's country.")


def iban_country_check(country: str) -> Check | None:
    """A warning when ``country``'s accounts have IBANs (the trader should give the IBAN).

    >>> iban_country_check("DE").code, iban_country_check("US")
    ('ACCOUNT_COUNTRY_USES_IBAN', None)
    """
    if spec(country) is None:
        return None
    return Check("account_country", WARNING, f"Accounts in {country} have IBANs: ask for the "
                 "IBAN, which can be checked.", codes.ACCOUNT_COUNTRY_USES_IBAN)


def bank_names(bic: str) -> str | None:
    """The bank's name for ``bic`` from schwifty's registry, if it has one.

    >>> bank_names("DEUTDEFF"), bank_names("CHASUS33")
    ('Deutsche Bank', None)
    """
    found = BIC(bic, allow_invalid=True).bank_names
    return found[0] if found else None


def compact_reference(raw: str) -> str:
    """A wallet or processor reference as fingerprinted: no white space, case folded (an
    e-mail address or account id given in another case is the same account).

    >>> compact_reference(" Seller@Example.COM ")
    'seller@example.com'
    """
    return "".join(raw.split()).casefold()


def mask(text: str) -> str:
    """The last four characters only (for an account number or a reference).

    >>> mask("62220210010432101234"), mask("abc")
    ('****1234', '****')
    """
    return "****" + text[-4:] if len(text) > 6 else "****"
