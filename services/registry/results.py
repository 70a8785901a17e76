"""What a registration check answers, as types: one :class:`RegistryCheckResult` per number
(and what the API reads from a request, :class:`RegistryCheckBody`).

They are :class:`~typing.TypedDict` s, so a result is the very dict the API serialises through
:class:`services.registry.schemas.RegistryCheckResultSchema` and the cache stores as JSON: the
types add nothing at run time, and ``mypy`` checks every key the checker writes and reads. The
schemas and these types describe the same fields (a test holds them together).
"""

# No ``from __future__ import annotations``: Python 3.11's TypedDict reads ``NotRequired`` only
# from evaluated annotations (``__required_keys__``, which the tests compare with the schemas).
from typing import Literal, NotRequired, TypedDict

#: ``unverifiable``: no register can be queried; ``unavailable``: an upstream fault.
Status = Literal["active", "inactive", "not_found", "invalid", "unverifiable", "unavailable"]


class ErrorInfo(TypedDict):
    """Why the register gave no answer (an ``unavailable`` result's ``error``)."""

    code: str
    retryable: bool
    message: str


class Source(TypedDict):
    """The register that answered (or was asked)."""

    id: str
    name: str
    url: str | None


class LegalForms(TypedDict):
    """The legal forms found in the two names (canonical codes of shared/legal_forms.csv)."""

    declared: str | None
    registered: str | None


class NameMatch(TypedDict):
    """The declared name against the registered one (:func:`shared.names.compare`)."""

    score: float
    verdict: str
    declared: str
    registered: str
    legal_forms: LegalForms


class RegistryResultBase(TypedDict):
    """The fields every answer starts from (:meth:`RegistryChecker._base`)."""

    kind: str | None
    country_code: str | None
    normalised: str
    format_valid: bool | None
    reason: str | None
    detail: str | None
    registered_name: str | None
    legal_form: str | None
    address: str | None
    registered_address: dict[str, str] | None
    status_raw: str | None
    status_detail: str | None
    ceased_on: str | None
    registered_as: str | None
    source: Source | None
    name_match: NameMatch | None
    error: ErrorInfo | None
    retry_after_s: float | None
    attempts: int
    cached: bool
    sandbox: bool


class RegistryCheckResult(RegistryResultBase):
    """The answer about one registration number (``POST /v1/registry/check``)."""

    status: Status
    checked_at: str


class RegistryCheckBody(TypedDict):
    """A request as :class:`~services.registry.schemas.RegistryCheckRequestSchema` loads it:
    only ``number`` is always there."""

    number: str
    country_code: NotRequired[str]
    kind: NotRequired[str]
    register: NotRequired[str]
    name: NotRequired[str]
    max_age_s: NotRequired[int]
