"""VAT registers outside VIES: the interface every national source implements, and its faults.

A number VIES does not hold is checked against its own country's source, one adapter module
each, all behind :class:`VatSource`:

- ``GB``: HMRC's "Check a UK VAT number" API v2 (:mod:`services.vat.hmrc`);
- ``CH``: the Swiss UID register's public SOAP services (:mod:`services.vat.uid`);
- ``NO``: Brønnøysund's Enhetsregisteret, ``registrertIMvaregisteret``
  (:mod:`services.vat.brreg_mva`).

An adapter answers :class:`SourceAnswer` (the register said valid or not) or raises a
:class:`SourceError` whose ``kind`` (:class:`~services.vat.vies.FaultKind`) is its fault table:
a throttle, an outage or a timeout is never an answer about the number, so the check is
``unavailable``, never ``invalid``, and never cached. No other module imports ``requests`` or
``zeep`` for these sources.
"""

from __future__ import annotations

import email.utils
import time
from dataclasses import dataclass
from typing import Any, Protocol

import requests

from services.vat.vies import FaultKind
from shared import outbound, upstream

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


class SourceError(Exception):
    """The source gave no answer about the number. ``code`` is stable and safe to show."""

    code = "UPSTREAM_ERROR"
    kind = FaultKind.OUTAGE

    def __init__(self, message: str, code: str | None = None,
                 kind: FaultKind | None = None, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        if code:
            self.code = code
        if kind is not None:
            self.kind = kind
        self.retry_after_s = retry_after_s


class SourceTimeout(SourceError):
    """The source did not answer within the timeout."""

    code = "UPSTREAM_TIMEOUT"


class SourceUnreachable(SourceError):
    """The source could not be reached, or answered an HTTP error (5xx, a gateway's page)."""

    code = "UPSTREAM_UNREACHABLE"


class SourceThrottled(SourceError):
    """The source refused the call for its rate limit (HTTP 429, a limit fault)."""

    code = "UPSTREAM_THROTTLED"
    kind = FaultKind.THROTTLE


class SourceBadResponse(SourceError):
    """The source answered something that is not a valid answer (unparsable, wrong shape)."""

    code = "UPSTREAM_BAD_RESPONSE"


class SourceRefused(SourceError):
    """The source refused *us* (credentials, requester, permissions): a person must look."""

    code = "UPSTREAM_REFUSED"
    kind = FaultKind.ATTENTION


class SourceCannotCheck(SourceError):
    """The source does not check numbers of this kind (HMRC and a ``GBGD…`` number): the
    answer is ``unverifiable``, a person decides."""

    code = "NOT_CHECKABLE"
    kind = FaultKind.ATTENTION


class VatSource(Protocol):
    """One national VAT source, as the VAT service needs it."""

    #: The answer's ``source`` (``hmrc``, ``uid``, ``brreg``); also its breaker and rate key.
    name: str

    def check(self, number: str, *, requester: str | None = None,
              timeout_s: float | None = None) -> SourceAnswer:
        """Ask about ``number`` (without its prefix or suffix); raise :class:`SourceError`.

        ``requester`` is the platform's own number for sources that give proof of the check.
        """
        ...

    def ready(self) -> None:
        """Raise if the adapter cannot make calls (for ``/readyz``)."""
        ...


def new_session(pool_size: int = 10, accept: str = "application/json") -> requests.Session:
    """A pooled session for one source; retries are the checker's, never urllib3's."""
    return upstream.new_session(USER_AGENT, pool_size, accept=accept)


def retry_after(value: str | None) -> float | None:
    """Seconds to wait, from a ``Retry-After`` header (seconds or an HTTP date).

    >>> retry_after("3"), retry_after(None), retry_after("soon")
    (3.0, None, None)
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def call(session: requests.Session, method: str, url: str, *, title: str,
         timeout: tuple[float, float], **kwargs: Any) -> requests.Response:
    """One HTTP call; a timeout or a connection failure is a :class:`SourceError`, a request
    that cannot leave the process :class:`shared.outbound.NotSent` (not the source's fault).
    The response, whatever its status, is the adapter's to read (its fault table)."""
    try:
        return outbound.send(session, method, url, timeout=timeout, what=title, **kwargs)
    except requests.Timeout as e:
        raise SourceTimeout(f"{title} did not answer in time") from e
    except requests.RequestException as e:
        raise SourceUnreachable(f"{title} could not be reached: {type(e).__name__}") from e


def http_fault(response: requests.Response, title: str) -> SourceError:
    """The fault of an HTTP status no adapter reads as an answer: 429 is a throttle (with
    ``Retry-After``), 401/403 a refusal of our credentials, anything else an outage."""
    status = response.status_code
    if status == 429:
        return SourceThrottled(f"{title} throttled the call (HTTP 429)",
                               retry_after_s=retry_after(response.headers.get("Retry-After")))
    if status in (401, 403):
        return SourceRefused(f"{title} refused our credentials (HTTP {status})")
    return SourceUnreachable(f"{title} answered HTTP {status}", code=f"UPSTREAM_HTTP_{status}")


def json_of(response: requests.Response, title: str) -> Any:
    """The JSON body of ``response``, or :class:`SourceBadResponse`."""
    try:
        return response.json()
    except ValueError as e:
        raise SourceBadResponse(f"{title} answered content that is not JSON") from e


def join_lines(*parts: Any) -> str | None:
    """Address lines joined with newlines, blanks dropped; None when nothing is left.

    >>> join_lines("1 High St", None, " ", "SW1A 1AA")
    '1 High St\\nSW1A 1AA'
    """
    lines = [str(p).strip() for p in parts if p is not None and str(p).strip()]
    return "\n".join(lines) or None
