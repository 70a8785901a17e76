"""Every stable code the payment service answers with, in one place.

A code names *why* a check did not simply pass. Codes are part of the API: clients branch on
them, so they are never renamed, only added. Each has a kind:

- ``error``: a hard check failed; the answer's ``status`` is ``invalid`` and the code is listed
  in ``errors``;
- ``warning``: worth a person's look, but the details are not invalid; listed in ``warnings``;
- ``upstream``: the payee-verification provider gave no answer; ``status`` is ``unavailable``
  and the code is ``error.code``.

>>> CODES["IBAN_CHECKSUM"].kind
'error'
>>> sorted(code for code, c in CODES.items() if c.kind == "upstream")[:2]
['CIRCUIT_OPEN', 'UPSTREAM_BAD_RESPONSE']
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Code:
    """A stable code: its kind (``error``, ``warning``, ``upstream``) and what it means."""

    kind: str
    meaning: str


# -- hard failures: status "invalid" --------------------------------------------------------
IBAN_CONFUSABLE_CHARACTERS = "IBAN_CONFUSABLE_CHARACTERS"
IBAN_INVALID_CHARACTERS = "IBAN_INVALID_CHARACTERS"
IBAN_COUNTRY_UNKNOWN = "IBAN_COUNTRY_UNKNOWN"
IBAN_LENGTH = "IBAN_LENGTH"
IBAN_FORMAT = "IBAN_FORMAT"
IBAN_CHECKSUM = "IBAN_CHECKSUM"
IBAN_NATIONAL_CHECKSUM = "IBAN_NATIONAL_CHECKSUM"
BIC_FORMAT = "BIC_FORMAT"
BIC_COUNTRY_MISMATCH = "BIC_COUNTRY_MISMATCH"
BIC_BANK_MISMATCH = "BIC_BANK_MISMATCH"
ACCOUNT_NUMBER_FORMAT = "ACCOUNT_NUMBER_FORMAT"
BIC_ACCOUNT_COUNTRY_MISMATCH = "BIC_ACCOUNT_COUNTRY_MISMATCH"

# -- warnings: status stays "valid" ---------------------------------------------------------
IBAN_COUNTRY_ASPIRATIONAL = "IBAN_COUNTRY_ASPIRATIONAL"
BANK_CODE_UNKNOWN = "BANK_CODE_UNKNOWN"
BIC_OTHER_BRANCH = "BIC_OTHER_BRANCH"
SEPA_NOT_MEMBER = "SEPA_NOT_MEMBER"
HOLDER_CLOSE_MATCH = "HOLDER_CLOSE_MATCH"
HOLDER_NO_MATCH = "HOLDER_NO_MATCH"
PAYEE_CLOSE_MATCH = "PAYEE_CLOSE_MATCH"
PAYEE_NO_MATCH = "PAYEE_NO_MATCH"
PAYEE_NOT_POSSIBLE = "PAYEE_NOT_POSSIBLE"
ACCOUNT_COUNTRY_USES_IBAN = "ACCOUNT_COUNTRY_USES_IBAN"

# -- upstream faults: status "unavailable" (only when payee verification was asked for) ------
UPSTREAM_TIMEOUT = "UPSTREAM_TIMEOUT"
UPSTREAM_UNREACHABLE = "UPSTREAM_UNREACHABLE"
UPSTREAM_BAD_RESPONSE = "UPSTREAM_BAD_RESPONSE"
UPSTREAM_REJECTED = "UPSTREAM_REJECTED"
UPSTREAM_THROTTLED = "UPSTREAM_THROTTLED"
CIRCUIT_OPEN = "CIRCUIT_OPEN"

CODES: dict[str, Code] = {
    IBAN_CONFUSABLE_CHARACTERS: Code(
        "error", "The IBAN holds letters or digits of another script (Cyrillic, Greek, ...) that "
        "look like Latin ones; it must be typed with A-Z and 0-9."),
    IBAN_INVALID_CHARACTERS: Code(
        "error", "The IBAN holds characters other than A-Z, 0-9 and spaces (e.g. '-', 'Ä')."),
    IBAN_COUNTRY_UNKNOWN: Code(
        "error", "The first two letters are not the code of a country that uses IBANs."),
    IBAN_LENGTH: Code("error", "The IBAN is longer or shorter than its country's IBANs."),
    IBAN_FORMAT: Code(
        "error", "The IBAN does not follow its country's format (letters where digits belong, "
        "no check digits after the country code, ...)."),
    IBAN_CHECKSUM: Code(
        "error", "The two IBAN check digits do not match (ISO 7064 mod 97-10): a typo."),
    IBAN_NATIONAL_CHECKSUM: Code(
        "error", "The national check digits inside the account number do not match: a typo."),
    BIC_FORMAT: Code(
        "error", "The BIC is not an ISO 9362 code: 8 or 11 characters, 4 for the institution, "
        "2 letters of a country, 2 for the location, optionally 3 for the branch."),
    BIC_COUNTRY_MISMATCH: Code("error", "The BIC's country is not the IBAN's country."),
    BIC_BANK_MISMATCH: Code(
        "error", "The bank directory gives the IBAN's bank code another institution's BIC."),
    ACCOUNT_NUMBER_FORMAT: Code(
        "error", "The account number (kind account) holds characters other than A-Z and 0-9 "
        "(spaces and hyphens are ignored), or more than 34."),
    BIC_ACCOUNT_COUNTRY_MISMATCH: Code(
        "error", "The BIC is of a bank in another country than the account's (kind account)."),
    IBAN_COUNTRY_ASPIRATIONAL: Code(
        "warning", "The country's IBAN format is announced but not yet in the SWIFT IBAN "
        "registry; banks may refuse it."),
    BANK_CODE_UNKNOWN: Code(
        "warning", "The bank directory of the IBAN's country has no bank with this bank code."),
    BIC_OTHER_BRANCH: Code(
        "warning", "The BIC is the same institution's, but not the one the bank directory "
        "gives for the IBAN's bank code (its head office, XXX or another branch)."),
    SEPA_NOT_MEMBER: Code(
        "warning", "The IBAN's country or territory is not in the SEPA schemes' scope: no SEPA "
        "transfers."),
    HOLDER_CLOSE_MATCH: Code(
        "warning", "account_holder is close to, not the same as, trader_name."),
    HOLDER_NO_MATCH: Code("warning", "account_holder does not match trader_name."),
    PAYEE_CLOSE_MATCH: Code(
        "warning", "The payee's bank reports a close match (CMTC) and returns the holder's name."),
    PAYEE_NO_MATCH: Code(
        "warning", "The payee's bank reports that the name does not match (NMTC)."),
    PAYEE_NOT_POSSIBLE: Code(
        "warning", "The payee's bank could not verify the name (NOAP), or the account is outside "
        "the scope of Verification of Payee."),
    ACCOUNT_COUNTRY_USES_IBAN: Code(
        "warning", "An account number (kind account) in a country whose accounts have IBANs: "
        "ask for the IBAN, which can be checked."),
    UPSTREAM_TIMEOUT: Code("upstream", "The payee-verification provider did not answer in time."),
    UPSTREAM_UNREACHABLE: Code(
        "upstream", "The payee-verification provider could not be reached or answered HTTP 5xx."),
    UPSTREAM_BAD_RESPONSE: Code(
        "upstream", "The payee-verification provider answered something that is not a VoP answer."),
    UPSTREAM_REJECTED: Code(
        "upstream", "The payee-verification provider refused trace30's request (HTTP 4xx): "
        "a person must look at the configuration."),
    UPSTREAM_THROTTLED: Code(
        "upstream", "The payee-verification provider asked trace30 to slow down (HTTP 429); "
        "retry_after_s says when to ask again."),
    CIRCUIT_OPEN: Code(
        "upstream", "The payee-verification provider failed repeatedly; it is not asked again "
        "until the cool-down ends."),
}


def kind(code: str) -> str:
    """The kind of ``code``: ``error``, ``warning`` or ``upstream``.

    >>> kind("BIC_OTHER_BRANCH")
    'warning'
    """
    return CODES[code].kind
