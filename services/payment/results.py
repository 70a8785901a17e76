"""What a payment-details check answers, as types: one :class:`PaymentCheckResult` per request
(and what the API reads from a request, :class:`PaymentCheckBody`).

They are :class:`~typing.TypedDict` s, so a result is the very dict the API serialises through
:class:`services.payment.schemas.PaymentCheckResultSchema`: the types add nothing at run time,
and ``mypy`` checks every key the checker writes and reads. The schemas and these types
describe the same fields (a test holds them together).
"""

# No ``from __future__ import annotations``: Python 3.11's TypedDict reads ``NotRequired`` only
# from evaluated annotations (``__required_keys__``, which the tests compare with the schemas).
from typing import Literal, NotRequired, TypedDict

#: ``unavailable`` only when payee verification was asked for and the provider gave no answer.
Status = Literal["valid", "invalid", "unavailable"]
#: A name comparison's outcome, the bank's (``payee``) or the local one (``holder_match``).
NameResult = Literal["match", "close_match", "no_match", "not_possible"]


class CheckInfo(TypedDict):
    """One local check (:class:`services.payment.ibans.Check` as the API shows it)."""

    name: str
    result: str
    detail: str
    code: str | None


class Bank(TypedDict):
    """The bank the directory names for the account."""

    name: str | None
    bic: str | None
    source: str | None


class Sepa(TypedDict):
    """Whether the account's country is in SEPA, by the EPC list."""

    member: bool | None
    as_of: str
    source: str


class HolderMatch(TypedDict):
    """``account_holder`` against ``trader_name``, compared locally."""

    result: NameResult
    matched_name: str | None
    score: float | None
    detail: str


class Payee(TypedDict):
    """The payee's bank's Verification of Payee answer (``result`` None: no answer)."""

    result: NameResult | None
    code: str | None
    matched_name: str | None
    name_checked: str
    source: str | None
    detail: str


class ErrorInfo(TypedDict):
    """Why the provider gave no answer (an ``unavailable`` result's ``error``)."""

    code: str
    retryable: bool
    message: str


class PaymentCheckResult(TypedDict):
    """The answer about one set of payment details (``POST /v1/payment/check``)."""

    status: Status
    kind: str
    iban_masked: str | None
    account_masked: str | None
    provider: str | None
    country_code: str | None
    checks: list[CheckInfo]
    bank: Bank
    sepa: Sepa
    holder_match: HolderMatch
    payee: Payee | None
    errors: list[str]
    warnings: list[str]
    account_fingerprint: str | None
    error: ErrorInfo | None
    retry_after_s: float | None
    sandbox: bool
    checked_at: str


class PaymentCheckBody(TypedDict):
    """A request as :class:`~services.payment.schemas.PaymentCheckRequestSchema` loads it: the
    fields with a default are always there, the others only when the caller sent them."""

    kind: str
    verify_payee: bool
    iban: NotRequired[str]
    bic: NotRequired[str]
    account_number: NotRequired[str]
    country_code: NotRequired[str]
    reference: NotRequired[str]
    provider: NotRequired[str]
    account_holder: NotRequired[str]
    trader_name: NotRequired[str]
