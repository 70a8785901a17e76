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

Everything that can go wrong is translated here into :class:`shared.upstream.UpstreamError`
with a stable ``code`` (:mod:`.codes`); no other module imports requests. No message carries
the IBAN or the name: ``requests`` errors are reduced to their class name.

A request that cannot leave the process (text no request should carry in the name, a URL or
body that cannot be built) is :class:`shared.outbound.NotSent`, never an ``UpstreamError``: the
provider was not asked, so it is not an upstream fault, not counted by the breaker and never
``unavailable``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import requests

from services.payment import codes
from shared import outbound, upstream
from shared.upstream import Fault, UpstreamError

#: The answers of the scheme: match, close match (with the holder's name), no match, not possible.
RESULTS = ("MTCH", "CMTC", "NMTC", "NOAP")
PATH = "/payee-verifications"
TITLE = "the payee-verification provider"


#: How the provider's HTTP statuses that are not answers are named (the codes the API has
#: always answered): 5xx ``UPSTREAM_UNREACHABLE``, 429 ``UPSTREAM_THROTTLED`` (with
#: ``Retry-After``), another 4xx ``UPSTREAM_REJECTED`` (configuration, not the account).
HTTP_FAULTS = upstream.HttpFaults(server_code=codes.UPSTREAM_UNREACHABLE,
                                  refused_code=codes.UPSTREAM_REJECTED,
                                  client_error=Fault.REJECTED)


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
        """Ask whether the account ``iban`` is held by ``name``; raise
        :class:`~shared.upstream.UpstreamError` when the provider gives no answer,
        :class:`shared.outbound.NotSent` when the request cannot be built."""
        ...

    def ready(self) -> None:
        """Raise if the client cannot make calls (for ``/readyz``)."""
        ...


def new_session(pool_size: int = 10) -> requests.Session:
    """A pooled session for the provider (keep-alive saves a TLS handshake per check)."""
    return upstream.new_session("trace30-payment/0.1 (+https://trace30.dev)", pool_size)


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
        resp = upstream.send(self.session, "POST", self.url, json=body, headers=headers,
                             timeout=(self.connect_timeout_s, read), title=TITLE)
        if resp.status_code >= 400:
            raise HTTP_FAULTS.fault(resp, TITLE)
        return _answer(resp)


def _answer(resp: requests.Response) -> PayeeAnswer:
    """Read a 2xx answer; anything that is not a VoP answer is ``Fault.BAD_RESPONSE``."""
    data = upstream.json_of(resp, TITLE)
    if not isinstance(data, dict):
        raise _bad("the payee-verification answer is not a JSON object")
    result = data.get("partyNameMatch")
    if result not in RESULTS:
        raise _bad("the payee-verification answer has no known partyNameMatch")
    matched = data.get("matchedName")
    if matched is not None and not isinstance(matched, str):
        raise _bad("the payee-verification answer's matchedName is not text")
    if result == "CMTC" and not matched:
        raise _bad("a close match (CMTC) must carry matchedName")
    # The scheme returns the holder's name with a close match only; anything else is dropped.
    return PayeeAnswer(result, matched if result == "CMTC" else None)


def _bad(message: str) -> UpstreamError:
    return UpstreamError(message, Fault.BAD_RESPONSE)
