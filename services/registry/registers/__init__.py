"""Live business registers: one small interface, one adapter module per register.

:class:`Register` is what :mod:`services.registry.checks` calls; each adapter module holds one
real implementation talking to one official register (or, in sandbox, to the project's
registers simulator at the same paths):

- :mod:`.gleif`: GLEIF LEI records (api.gleif.org, no key);
- :mod:`.fr_recherche`: France, API Recherche d'entreprises (no key);
- :mod:`.no_brreg`: Norway, Brønnøysund Enhetsregisteret (no key);
- :mod:`.gb_companies_house`: UK Companies House (API key);
- :mod:`.dk_cvr`: Denmark CVR, system-to-system Elasticsearch (user and password);
- :mod:`.cz_ares`: Czech Republic, ARES of the Ministry of Finance (no key);
- :mod:`.pl_krs`: Poland, Krajowy Rejestr Sądowy, the Ministry of Justice's API KRS (no key).

A lookup returns a :class:`RegisterRecord` (the register knows the number), ``None`` (it does
not: ``not_found``) or raises a :class:`RegisterError` (no answer: ``unavailable``). Adapters
translate every ``requests`` exception and HTTP error into that tree (:mod:`.http`), so no
other module imports requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol, runtime_checkable

#: What a register says of a record it holds.
Found = Literal["active", "inactive"]
ACTIVE: Final = "active"
INACTIVE: Final = "inactive"


class RegisterError(Exception):
    """The register gave no answer about the number. ``code`` is stable and safe to show.

    ``retryable``: asking again later may work. ``outage``: the fault counts towards the
    register's circuit breaker. ``retry_after_s``: how long the register asked us to wait.
    """

    code = "UPSTREAM_ERROR"
    retryable = True
    outage = True

    def __init__(self, message: str, *, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class RegisterTimeout(RegisterError):
    """The register did not answer within the timeout."""

    code = "UPSTREAM_TIMEOUT"


class RegisterUnreachable(RegisterError):
    """The register could not be reached (connection refused or reset, DNS, TLS)."""

    code = "UPSTREAM_UNREACHABLE"


class RegisterServerError(RegisterError):
    """The register answered with a 5xx."""

    code = "UPSTREAM_SERVER_ERROR"


class RegisterBadResponse(RegisterError):
    """The register answered something that is not the JSON it documents."""

    code = "UPSTREAM_BAD_RESPONSE"


class RegisterThrottled(RegisterError):
    """The register answered 429: we asked too often. Not an outage."""

    code = "UPSTREAM_THROTTLED"
    outage = False


class RegisterAuthError(RegisterError):
    """The register refused our credentials (401/403): a person must look at the settings."""

    code = "UPSTREAM_AUTH"
    retryable = False
    outage = False


class RegisterRejected(RegisterError):
    """The register refused the request itself (another 4xx): asking again will not help."""

    code = "UPSTREAM_REJECTED"
    retryable = False
    outage = False


@dataclass(frozen=True)
class RegisterRecord:
    """What a register says about one number, in the service's words plus its own.

    ``status`` is :data:`ACTIVE` or :data:`INACTIVE`; ``status_raw`` is the register's own word
    for it and ``status_detail`` any further qualifier it gives. ``url`` is the record's public
    page, for a person to look at.
    """

    status: Found
    status_raw: str
    registered_name: str | None
    url: str
    legal_form: str | None = None
    address: str | None = None
    #: The same address in parts (``street``, ``postcode``, ``city``, ``country``), as the
    #: register keeps them; the gateway compares the trader's declared address with them.
    address_parts: dict[str, str] | None = None
    country: str | None = None
    status_detail: str | None = None
    ceased_on: str | None = None
    registered_as: str | None = None


@runtime_checkable
class Register(Protocol):
    """One official register, as the registry service needs it."""

    #: The adapter's id (``gleif``, ``fr_recherche``...), used in cache keys, limits, answers.
    source: str
    #: The register's name for people.
    title: str

    def lookup(self, *, kind: str, number: str, timeout_s: float | None = None) -> (
        RegisterRecord | None
    ):
        """Look ``number`` (compact, valid for ``kind``) up; ``None`` when the register has no
        such record. Raises :class:`RegisterError` when it gives no answer. ``timeout_s`` caps
        the read timeout of this call (what is left of the check's deadline)."""
        ...
