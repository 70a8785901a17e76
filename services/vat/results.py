"""What a VAT check answers, as types: one :class:`VatCheckResult` per number (and what the
API reads from a request, :class:`VatCheckBody`).

They are :class:`~typing.TypedDict` s, so a result is the very dict the API serialises through
:class:`services.vat.schemas.VatCheckResultSchema` and the cache stores as JSON: the types add
nothing at run time, and ``mypy`` checks every key the checkers write and read. The schema and
these types describe the same fields (a test holds them together).
"""

# No ``from __future__ import annotations``: Python 3.11's TypedDict reads ``NotRequired`` only
# from evaluated annotations (``__required_keys__``, which the tests compare with the schemas).
from typing import Literal, NotRequired, TypedDict

#: ``unverifiable``: no online source checks the number; ``unavailable``: an upstream fault.
Status = Literal["valid", "invalid", "unavailable", "unverifiable"]


class ErrorInfo(TypedDict):
    """Why a source gave no answer (an ``unavailable`` result's ``error``)."""

    code: str
    retryable: bool
    message: str


class VatResultBase(TypedDict):
    """The fields every answer about a parsed number starts from (:meth:`VatChecker._base`)."""

    vat_number: str
    country_code: str
    format_valid: bool
    reason: str | None
    detail: str | None
    name: str | None
    address: str | None
    trader: dict[str, str | None] | None
    match: dict[str, str] | None
    consultation_number: str | None
    request_date: str | None
    error: ErrorInfo | None
    retry_after_s: float | None
    attempts: int
    cached: bool
    stale: bool
    sandbox: bool


class VatCheckResult(VatResultBase):
    """The answer about one VAT number (``POST /v1/vat/check``)."""

    status: Status
    #: Who answered: vies-soap, vies-rest, hmrc, uid, brreg, or local.
    source: str
    checked_at: str


class TraderBody(TypedDict, total=False):
    """The trader details of a request, as :class:`~services.vat.schemas.TraderSchema` loads
    them (each one optional)."""

    name: str
    street: str
    postcode: str
    city: str
    company_type: str


class VatCheckBody(TypedDict):
    """A request as :class:`~services.vat.schemas.VatCheckRequestSchema` loads it: the fields
    with a default are always there, the others only when the caller sent them."""

    vat_number: str
    allow_stale: bool
    priority: Literal["interactive", "batch"]
    requester_vat_number: NotRequired[str]
    trader: NotRequired[TraderBody]
    max_age_s: NotRequired[int]
