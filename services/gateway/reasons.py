"""The stable list of reason codes a verdict can carry, with their item and severity, and the
verdicts themselves (:class:`Verdict`).

Codes never change meaning once published: marketplaces map them to their own messages and
workflows. Severity says what the reason does to the verdict:

- ``error``: definitive, the verdict is ``rejected``;
- ``pending``: an upstream could not answer; the verdict is ``pending`` (unless rejected);
- ``warning``: a person must look; the verdict is ``needs_review`` (unless rejected or pending);
- ``info``: recorded, changes nothing.

``message`` is written for the trader: it says what to fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ITEM_A = "30(1)(a)"  # name, address, telephone number, e-mail
ITEM_B = "30(1)(b)"  # identification document or eID
ITEM_C = "30(1)(c)"  # payment account details
ITEM_D = "30(1)(d)"  # trade register and registration number (and VAT number)
ITEM_E = "30(1)(e)"  # self-certification: only products that comply with EU law

ITEMS = {"a": ITEM_A, "b": ITEM_B, "c": ITEM_C, "d": ITEM_D, "e": ITEM_E}

SEVERITIES = ("error", "pending", "warning", "info")


class Verdict(StrEnum):
    """The traceability verdict. A member is its plain string (``Verdict.VERIFIED ==
    "verified"``), so JSON, SQL, webhooks and templates carry the same text as before.

    >>> [str(v) for v in Verdict]
    ['verified', 'needs_review', 'rejected', 'pending']
    >>> import json; json.dumps({"verdict": Verdict.NEEDS_REVIEW})
    '{"verdict": "needs_review"}'
    """

    VERIFIED = "verified"  # may trade
    NEEDS_REVIEW = "needs_review"  # a person decides
    REJECTED = "rejected"  # definitive
    PENDING = "pending"  # an upstream did not answer: tried again

    @classmethod
    def values(cls) -> list[str]:
        """The verdicts as plain strings, in order (for choices and messages)."""
        return [v.value for v in cls]


@dataclass(frozen=True)
class Reason:
    """One entry of the catalogue."""

    code: str
    item: str
    severity: str
    message: str


_CATALOGUE = [
    # (a) contact details
    Reason("MISSING_NAME", ITEM_A, "error", "Provide the trader's full legal name."),
    Reason("MISSING_ADDRESS", ITEM_A, "error",
           "Provide the trader's address: street, postcode, city and country."),
    Reason("MISSING_EMAIL", ITEM_A, "error", "Provide the trader's e-mail address."),
    Reason("MISSING_PHONE", ITEM_A, "error", "Provide the trader's telephone number."),
    Reason("ADDRESS_MISMATCH", ITEM_A, "warning",
           "The address differs from the one the VAT register or the business register holds "
           "for the trader: give the registered address, or update it at the register."),
    # (b) identification
    Reason("MISSING_IDENTIFICATION", ITEM_B, "error",
           "Provide a copy of an identification document or an electronic identification."),
    # (b) supporting documents (issue 12: services/gateway/documents)
    Reason("DOCUMENT_NAME_MISMATCH", ITEM_B, "warning",
           "The name on the document you sent differs from the trader's name; send a "
           "document in the trader's name, or correct the name you declared."),
    # (c) payment account
    Reason("MISSING_PAYMENT", ITEM_C, "error", "Provide the trader's payment account (IBAN)."),
    Reason("IBAN_INVALID", ITEM_C, "error",
           "The IBAN is not valid; check it against a bank statement and submit it again."),
    Reason("PAYMENT_ACCOUNT_INVALID", ITEM_C, "error",
           "The account number or the BIC is not valid, or the BIC is of a bank in another "
           "country than the account; check them against a bank statement and submit them "
           "again."),
    Reason("PAYMENT_ACCOUNT_NOT_IBAN", ITEM_C, "warning",
           "The payment account has no IBAN (an account number with a BIC, or a wallet or "
           "payment-processor account), which cannot be checked against the bank; a person "
           "will review it, and may ask for a bank statement."),
    Reason("PAYMENT_INPUT_INVALID", ITEM_C, "error",
           "The payment details could not be read; correct them and submit again."),
    Reason("PAYMENT_CHECK_UNAVAILABLE", ITEM_C, "pending",
           "The payment account could not be checked right now; it is retried automatically."),
    Reason("PAYEE_NAME_MISMATCH", ITEM_C, "warning",
           "The account holder's name does not match the trader's name; use an account held "
           "by the trader."),
    Reason("PAYEE_NAME_CLOSE_MATCH", ITEM_C, "warning",
           "The account holder's name is close to, but not the same as, the trader's name."),
    Reason("PAYEE_NAME_NOT_CHECKED", ITEM_C, "info",
           "The account holder's name could not be checked with the bank."),
    Reason("BIC_WARNING", ITEM_C, "info", "The BIC belongs to another branch of the same bank."),
    Reason("ACCOUNT_SHARED", ITEM_C, "warning",
           "The same payment account is used by other traders on this marketplace."),
    Reason("LINKED_TO_REJECTED_TRADER", ITEM_A, "warning",
           "The payment account, VAT number or company registration given is also used by a "
           "trader this marketplace rejected; a person will review the account."),
    # (d) register and VAT
    Reason("REGISTRATION_NUMBER_INVALID", ITEM_D, "error",
           "The registration number is not valid for that register; check it on the register "
           "extract."),
    Reason("REGISTRATION_INPUT_INVALID", ITEM_D, "error",
           "The registration details could not be read; check the country, kind and number."),
    Reason("REGISTER_NOT_FOUND", ITEM_D, "error",
           "The register has no company with that number; check it on the register extract."),
    Reason("REGISTER_INACTIVE", ITEM_D, "error",
           "The register lists the company as not active (dissolved, in liquidation or deleted)."),
    Reason("REGISTER_UNVERIFIABLE", ITEM_D, "warning",
           "The register of that country cannot be checked online; provide a recent register "
           "extract."),
    Reason("REGISTER_UNAVAILABLE", ITEM_D, "pending",
           "The business register did not answer; the check is retried automatically."),
    Reason("REGISTRATION_EXPECTED", ITEM_D, "warning",
           "The name carries the legal form of a registered company, but no registration was "
           "given: provide the register and the registration number, or, for a sole trader, "
           "declare that the trader is not registered."),
    Reason("REGISTER_NAME_MISMATCH", ITEM_D, "warning",
           "The name in the business register differs from the declared name."),
    Reason("VAT_NUMBER_SHARED", ITEM_D, "warning",
           "The same VAT number is used by other traders on this marketplace."),
    Reason("REGISTRATION_SHARED", ITEM_D, "warning",
           "The same company registration is used by other traders on this marketplace."),
    Reason("VAT_INVALID", ITEM_D, "error",
           "The VAT number is not valid: its format or check digits are wrong, or the tax "
           "authority's own register does not list it; check it on a VAT document and submit "
           "it again."),
    Reason("VAT_NOT_IN_VIES", ITEM_D, "warning",
           "VIES does not list the VAT number as valid. A number registered for domestic "
           "trade only is not in VIES: ask your tax office to register it for intra-EU trade "
           "(VIES), or send a certificate of VAT registration from your tax office."),
    Reason("VAT_UNVERIFIABLE", ITEM_D, "warning",
           "The VAT number cannot be checked online; send a certificate of VAT registration "
           "from your tax office."),
    Reason("VAT_INPUT_INVALID", ITEM_D, "error",
           "The VAT number could not be read; check it and submit it again."),
    Reason("VAT_UNAVAILABLE", ITEM_D, "pending",
           "VIES did not answer for that member state; the check is retried automatically."),
    Reason("VAT_BLOCKED", ITEM_D, "warning",
           "VIES refuses to check this VAT number; a person will look at it."),
    Reason("VIES_REFUSED_REQUESTER", ITEM_D, "warning",
           "VIES refused the marketplace's own request; the operator must look at it."),
    Reason("VIES_NAME_MISMATCH", ITEM_D, "warning",
           "The name VIES holds for the VAT number differs from the declared name."),
    Reason("VAT_CHECKED_STALE", ITEM_D, "info",
           "VIES was down; the last valid answer was used."),
    # (e) self-certification
    Reason("MISSING_SELF_CERTIFICATION", ITEM_E, "error",
           "The trader must certify that it offers only products that comply with EU law."),
    Reason("SELF_CERTIFICATION_NOT_ACCEPTED", ITEM_E, "error",
           "The trader did not accept the self-certification; it must accept it to sell."),
]

#: code → :class:`Reason`
CATALOGUE: dict[str, Reason] = {r.code: r for r in _CATALOGUE}
#: Codes raised outside the automated verdict, which ``verdicts.decide`` never gives: a
#: supporting document's name check (services/gateway/documents).
OUTSIDE_THE_VERDICT = frozenset({"DOCUMENT_NAME_MISMATCH"})


def reason(code: str, detail: str | None = None) -> dict[str, str]:
    """The reason ``code`` as it appears in a verdict (``detail`` adds specifics).

    >>> reason("VAT_INVALID")["item"]
    '30(1)(d)'
    """
    r = CATALOGUE[code]
    out = {"code": r.code, "item": r.item, "severity": r.severity, "message": r.message}
    if detail:
        out["detail"] = detail
    return out
