"""Verification of Payee (VoP): the interface, its HTTP adapter and its faults.

:class:`PayeeVerification` is what the payment service uses; :class:`HttpPayeeVerification`
talks to a provider in the shape of the EPC VoP API (the inter-PSP API of the EPC's
Verification Of Payee scheme), at ``TRACE30_PAYEE_VERIFICATION_URL`` (the project's simulator,
``simulators.payee``, in sandbox)::

    POST {base}/payee-verifications
    X-Request-ID: <uuid>            X-Request-Timestamp: 2025-10-09T12:00:00.000Z
    {"party": {"name": "ACME GmbH"},
     "partyAccount": {"iban": "DE89370400440532013000"},
     "partyAgent": {"financialInstitutionId": {"bicfi": "COBADEFFXXX"}}}   # when known

    200 {"partyNameMatch": "MTCH" | "CMTC" | "NMTC" | "NOAP",
         "matchedName": "ACME GmbH"}                                       # with CMTC

Everything that can go wrong is translated here into :class:`PayeeError` subclasses with a
stable ``code``; no other module imports requests. No message carries the IBAN or the name:
``requests`` errors are reduced to their class name.

A request that cannot leave the process (text no request should carry in the name, a URL or
body that cannot be built) is :class:`shared.outbound.NotSent`, never a ``PayeeError``: the
provider was not asked, so it is not an upstream fault, not counted by the breaker and never
``unavailable``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import requests
from requests.adapters import HTTPAdapter

from services.payment import codes
from shared import outbound

#: The answers of the scheme: match, close match (with the holder's name), no match, not possible.
RESULTS = ("MTCH", "CMTC", "NMTC", "NOAP")
PATH = "/payee-verifications"


class PayeeError(Exception):
    """The provider gave no answer. ``code`` is stable and safe to show; ``retryable`` says
    whether asking again later may help."""

    code = codes.UPSTREAM_UNREACHABLE
    retryable = True


class PayeeTimeout(PayeeError):
    """The provider did not answer within the timeout."""

    code = codes.UPSTREAM_TIMEOUT


class PayeeUnreachable(PayeeError):
    """The provider could not be reached, or answered HTTP 5xx."""

    code = codes.UPSTREAM_UNREACHABLE


class PayeeBadResponse(PayeeError):
    """The provider answered something that is not a VoP answer."""

    code = codes.UPSTREAM_BAD_RESPONSE


class PayeeRejected(PayeeError):
    """The provider refused the request (HTTP 4xx): configuration, not the account."""

    code = codes.UPSTREAM_REJECTED
    retryable = False


@dataclass(frozen=True)
class PayeeAnswer:
    """The provider's answer: ``result`` is MTCH, CMTC, NMTC or NOAP."""

    result: str
    matched_name: str | None = None


class PayeeVerification(Protocol):
    """Verification of Payee, as the payment service needs it."""

    def verify(
        self, *, name: str, iban: str, bic: str | None = None, timeout_s: float | None = None
    ) -> PayeeAnswer:
        """Ask whether the account ``iban`` is held by ``name``; raise :class:`PayeeError`
        when the provider gives no answer, :class:`shared.outbound.NotSent` when the request
        cannot be built."""
        ...

    def ready(self) -> None:
        """Raise if the client cannot make calls (for ``/readyz``)."""
        ...


def new_session(pool_size: int = 10) -> requests.Session:
    """A pooled session for the provider (keep-alive saves a TLS handshake per check)."""
    session = requests.Session()
    adapter = HTTPAdapter(pool_connections=1, pool_maxsize=pool_size, max_retries=0)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    session.headers["User-Agent"] = "trace30-payment/0.1 (+https://trace30.dev)"
    return session


def _timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class HttpPayeeVerification:
    """A VoP provider over HTTP + JSON (EPC VoP API shape). Build one per process."""

    def __init__(
        self,
        base_url: str,
        *,
        connect_timeout_s: float = 2.0,
        read_timeout_s: float = 5.0,
        session: requests.Session | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + PATH
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.session = session or new_session()

    def ready(self) -> None:
        """Nothing to load: the client is ready once built."""

    def verify(
        self, *, name: str, iban: str, bic: str | None = None, timeout_s: float | None = None
    ) -> PayeeAnswer:
        """See :meth:`PayeeVerification.verify`. Raises :class:`shared.outbound.NotSent`
        (``fields``: ``name``, ``iban``, ``bic``) when the request cannot be built."""
        refused = outbound.unsendable({"name": name, "iban": iban, "bic": bic})
        if refused:
            raise outbound.NotSent("The payee-verification request cannot carry these fields.",
                                   refused)
        body: dict[str, Any] = {"party": {"name": name}, "partyAccount": {"iban": iban}}
        if bic:
            body["partyAgent"] = {"financialInstitutionId": {"bicfi": bic}}
        headers = {"X-Request-ID": str(uuid.uuid4()), "X-Request-Timestamp": _timestamp()}
        read = min(timeout_s, self.read_timeout_s) if timeout_s else self.read_timeout_s
        try:
            resp = outbound.send(
                self.session, "POST", self.url, json=body, headers=headers,
                timeout=(self.connect_timeout_s, read), what="the payee-verification provider",
            )
        except requests.Timeout as e:
            raise PayeeTimeout("the payee-verification provider did not answer in time") from e
        except requests.RequestException as e:
            raise PayeeUnreachable(
                f"the payee-verification provider could not be reached: {type(e).__name__}"
            ) from e
        if resp.status_code >= 500:
            raise PayeeUnreachable(f"the payee-verification provider answered HTTP "
                                   f"{resp.status_code}")
        if resp.status_code >= 400:
            raise PayeeRejected(f"the payee-verification provider refused the request: HTTP "
                                f"{resp.status_code}")
        return _answer(resp)


def _answer(resp: requests.Response) -> PayeeAnswer:
    """Read a 2xx answer; anything that is not a VoP answer is :class:`PayeeBadResponse`."""
    try:
        data = resp.json()
    except ValueError as e:
        raise PayeeBadResponse("the payee-verification provider answered non-JSON") from e
    if not isinstance(data, dict):
        raise PayeeBadResponse("the payee-verification answer is not a JSON object")
    result = data.get("partyNameMatch")
    if result not in RESULTS:
        raise PayeeBadResponse("the payee-verification answer has no known partyNameMatch")
    matched = data.get("matchedName")
    if matched is not None and not isinstance(matched, str):
        raise PayeeBadResponse("the payee-verification answer's matchedName is not text")
    if result == "CMTC" and not matched:
        raise PayeeBadResponse("a close match (CMTC) must carry matchedName")
    # The scheme returns the holder's name with a close match only; anything else is dropped.
    return PayeeAnswer(result, matched if result == "CMTC" else None)
