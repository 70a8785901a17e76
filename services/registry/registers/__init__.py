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
not: ``not_found``) or raises a :class:`shared.upstream.UpstreamError` (no answer:
``unavailable``). Adapters translate every ``requests`` exception and HTTP error into it
(:mod:`.http`), so no other module imports requests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal, Protocol, runtime_checkable

#: What a register says of a record it holds.
Found = Literal["active", "inactive"]
ACTIVE: Final = "active"
INACTIVE: Final = "inactive"


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
        such record. Raises :class:`~shared.upstream.UpstreamError` when it gives no answer.
        ``timeout_s`` caps the read timeout of this call (what is left of the check's
        deadline)."""
        ...
