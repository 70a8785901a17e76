"""VAT registers outside VIES: the interface every national source implements, and its faults.

A number VIES does not hold is checked against its own country's source, one adapter module
each, all behind :class:`VatSource`:

- ``GB``: HMRC's "Check a UK VAT number" API v2 (:mod:`services.vat.hmrc`);
- ``CH``: the Swiss UID register's public SOAP services (:mod:`services.vat.uid`);
- ``NO``: Brønnøysund's Enhetsregisteret, ``registrertIMvaregisteret``
  (:mod:`services.vat.brreg_mva`).

An adapter answers :class:`SourceAnswer` (the register said valid or not) or raises a
:class:`shared.upstream.UpstreamError` whose ``fault`` is its fault table: a throttle, an outage
or a timeout is never an answer about the number, so the check is ``unavailable``, never
``invalid``, and never cached; ``Fault.INVALID`` is the source refusing the number, and
``Fault.CANNOT_CHECK`` a number the source does not check (``unverifiable``). No other module
imports ``requests`` or ``zeep`` for these sources; the HTTP plumbing is
:mod:`shared.upstream`'s (``send``, ``json_of``, :data:`HTTP_FAULTS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import requests

from shared import upstream

USER_AGENT = "trace30-vat/0.1 (+https://trace30.dev)"


@dataclass(frozen=True)
class SourceAnswer:
    """What a national VAT source said about one number."""

    valid: bool
    name: str | None = None
    address: str | None = None
    #: Proof of the check where the source gives one (HMRC's ``consultationNumber``).
    consultation_number: str | None = None
    #: The source's own date of the check (``YYYY-MM-DD``), where it gives one.
    request_date: str | None = None
    #: Why the number is not valid, in words for a person (no personal data).
    detail: str | None = None


class VatSource(Protocol):
    """One national VAT source, as the VAT service needs it."""

    #: The answer's ``source`` (``hmrc``, ``uid``, ``brreg``); also its breaker and rate key.
    name: str

    def check(self, number: str, *, requester: str | None = None,
              timeout_s: float | None = None) -> SourceAnswer:
        """Ask about ``number`` (without its prefix or suffix); raise
        :class:`~shared.upstream.UpstreamError`.

        ``requester`` is the platform's own number for sources that give proof of the check.
        """
        ...

    def ready(self) -> None:
        """Raise if the adapter cannot make calls (for ``/readyz``)."""
        ...


def new_session(pool_size: int = 10, accept: str = "application/json") -> requests.Session:
    """A pooled session for one source; retries are the checker's, never urllib3's."""
    return upstream.new_session(USER_AGENT, pool_size, accept=accept)


#: How the HTTP sources name a status they do not read as an answer: 429 a throttle (with
#: ``Retry-After``), 401/403 ``UPSTREAM_REFUSED``, any other ``UPSTREAM_HTTP_<status>``.
HTTP_FAULTS = upstream.HttpFaults(server_retry_after=False)


def join_lines(*parts: Any) -> str | None:
    """Address lines joined with newlines, blanks dropped; None when nothing is left.

    >>> join_lines("1 High St", None, " ", "SW1A 1AA")
    '1 High St\\nSW1A 1AA'
    """
    lines = [str(p).strip() for p in parts if p is not None and str(p).strip()]
    return "\n".join(lines) or None
