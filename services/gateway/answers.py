"""The services' answers as the gateway reads them: typed views, one per service.

An answer is one of three things: the service's own result (every field its schema lists:
:class:`VatResult`, :class:`RegistryResult`, :class:`PaymentResult` name the ones the gateway
reads), :class:`Unavailable` (the gateway's own answer when the service gave none: a timeout,
a refused connection, a 5xx) or :class:`InputInvalid` (the service answered 400: it could not
read what the trader submitted). They are tagged by ``status``, so ``mypy`` narrows them: once
``status`` is ``valid``, every field of the service's result is there and is read by its key;
``"checked_at" in answer`` tells any result of the service's own from the other two.

These are views of JSON from another process: nothing checks them at run time (the services
dump their answers through their schemas, and the gateway trusts those).
"""

# No ``from __future__ import annotations``: the tests compare these keys with the services'
# schemas, through ``__required_keys__`` (Python 3.11 reads it from evaluated annotations).
from typing import Literal, TypedDict, final


class ErrorInfo(TypedDict):
    """Why a service (or the gateway) has no answer."""

    code: str
    retryable: bool
    message: str


@final  # final: ``"key" in answer`` tells it from a service's result
class Unavailable(TypedDict):
    """The gateway's own answer for a service that gave none."""

    status: Literal["unavailable"]
    error: ErrorInfo


@final
class InputInvalid(TypedDict):
    """A service's 400: ``errors`` names the fields it could not read."""

    status: Literal["input_invalid"]
    errors: dict[str, list[str]]
    detail: str | None


class VatResult(TypedDict):
    """What the gateway reads of the VAT service's answer (``VatCheckResultSchema``)."""

    status: Literal["valid", "invalid", "unavailable", "unverifiable"]
    vat_number: str
    format_valid: bool
    reason: str | None
    detail: str | None
    name: str | None
    address: str | None
    trader: dict[str, str | None] | None
    consultation_number: str | None
    request_date: str | None
    checked_at: str
    source: str
    stale: bool
    sandbox: bool
    error: ErrorInfo | None


class RegisterSource(TypedDict):
    """The register that answered (``SourceSchema`` of the registry service)."""

    id: str
    name: str
    url: str | None


class RegistryResult(TypedDict):
    """What the gateway reads of the registry service's answer (``RegistryCheckResultSchema``)."""

    status: Literal["active", "inactive", "not_found", "invalid", "unverifiable", "unavailable"]
    country_code: str | None
    kind: str | None
    normalised: str
    format_valid: bool | None
    detail: str | None
    registered_name: str | None
    address: str | None
    registered_address: dict[str, str] | None
    status_raw: str | None
    source: RegisterSource | None
    checked_at: str
    sandbox: bool
    error: ErrorInfo | None


class PaymentCheck(TypedDict):
    """One local check of the payment service (``CheckSchema``)."""

    name: str
    result: str
    detail: str
    code: str | None


class NameComparison(TypedDict):
    """The bank's (``payee``) or the local (``holder_match``) comparison of the holder's name;
    the gateway reads its ``result``."""

    result: str | None


class PaymentResult(TypedDict):
    """What the gateway reads of the payment service's answer (``PaymentCheckResultSchema``)."""

    status: Literal["valid", "invalid", "unavailable"]
    kind: str
    checks: list[PaymentCheck]
    bank: dict[str, str | None]
    holder_match: NameComparison
    payee: NameComparison | None
    errors: list[str]
    account_fingerprint: str | None
    checked_at: str
    sandbox: bool
    error: ErrorInfo | None


VatAnswer = VatResult | Unavailable | InputInvalid
RegistryAnswer = RegistryResult | Unavailable | InputInvalid
PaymentAnswer = PaymentResult | Unavailable | InputInvalid


class Checks(TypedDict):
    """The three services' answers to one verification; None where a service was not asked
    (no VAT number, no registration, no payment details)."""

    vat: VatAnswer | None
    registry: RegistryAnswer | None
    payment: PaymentAnswer | None
