"""United Kingdom: HMRC's "Check a UK VAT number" API, version 2.

``GET {base}/organisations/vat/check-vat-number/lookup/{targetVrn}[/{requesterVrn}]`` with
``Accept: application/vnd.hmrc.2.0+json`` and an OAuth 2.0 access token (application-restricted,
client credentials: ``POST {base}/oauth/token`` with ``grant_type=client_credentials``,
``client_id``, ``client_secret``, ``scope=read:vat``). The token is kept per process and renewed
a minute before it expires, or at once when the API answers 401.

With the platform's own VRN (``TRACE30_HMRC_REQUESTER_VRN``) HMRC answers a
``consultationNumber``, the proof of the check, kept like VIES's consultation number.

Fault table (HTTP status → meaning):

==================  ============================================================
200                 registered: ``valid`` with name, address, ``processingDate``
404 ``NOT_FOUND``   no VAT registration with that number: ``invalid``
400 target          HMRC refused the number's format: ``invalid``
400/403 requester   our own VRN is refused: ``unavailable``, not retryable (attention)
401 (twice), token  our credentials are refused: ``unavailable``, not retryable (attention)
429                 throttle (``Retry-After``): ``unavailable``, retryable
5xx, other          outage: ``unavailable``, retryable
timeout, no answer  outage: ``unavailable``, retryable
==================  ============================================================
"""

from __future__ import annotations

import threading
import time
from typing import Any

import requests

from services.vat.sources import HTTP_FAULTS, SourceAnswer, join_lines, new_session
from shared.upstream import Fault, UpstreamError, json_of, send

TITLE = "HMRC"
ACCEPT = "application/vnd.hmrc.2.0+json"
LOOKUP = "/organisations/vat/check-vat-number/lookup/"
OAUTH_PATH = "/oauth/token"
SCOPE = "read:vat"
#: A token is renewed this long before HMRC says it expires.
RENEW_BEFORE_S = 60.0


class HmrcVat:
    """The HMRC adapter (one per process, shared by its threads)."""

    name = "hmrc"

    def __init__(self, base_url: str, client_id: str, client_secret: str, *,
                 connect_timeout_s: float = 3.0, read_timeout_s: float = 8.0,
                 session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.client_id = client_id
        self.client_secret = client_secret
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.session = session or new_session(accept=ACCEPT)
        self._token: str | None = None
        self._expires_at = 0.0
        self._lock = threading.Lock()

    def ready(self) -> None:
        """Credentials are set (a token is only asked for with the first check)."""
        if not (self.client_id and self.client_secret):
            raise RuntimeError("HMRC client credentials are not set")

    def check(self, number: str, *, requester: str | None = None,
              timeout_s: float | None = None) -> SourceAnswer:
        """See :meth:`services.vat.sources.VatSource.check`."""
        if not number.isdigit():
            # GD/HA numbers (government departments, health authorities) are not in the API.
            raise UpstreamError("HMRC checks 9- or 12-digit VAT numbers only; government "
                                "department and health authority numbers are not in its API.",
                                Fault.CANNOT_CHECK)
        deadline = time.monotonic() + (timeout_s or self.read_timeout_s)
        path = LOOKUP + number + (f"/{requester}" if requester else "")
        response = self._lookup(path, deadline, fresh_token=False)
        if response.status_code == 401:  # expired or revoked token: one more, with a new one
            response = self._lookup(path, deadline, fresh_token=True)
        return self._read(response, bool(requester))

    # -- calls -----------------------------------------------------------------------------------

    def _timeout(self, deadline: float) -> tuple[float, float]:
        left = max(0.05, deadline - time.monotonic())
        return (min(self.connect_timeout_s, left), min(self.read_timeout_s, left))

    def _lookup(self, path: str, deadline: float, *, fresh_token: bool) -> requests.Response:
        token = self._access_token(deadline, fresh=fresh_token)
        return send(self.session, "GET", self.base_url + path, title=TITLE,
                    timeout=self._timeout(deadline),
                    headers={"Authorization": f"Bearer {token}", "Accept": ACCEPT})

    def _access_token(self, deadline: float, *, fresh: bool) -> str:
        with self._lock:
            if not fresh and self._token and time.monotonic() < self._expires_at:
                return self._token
            response = send(
                self.session, "POST", self.base_url + OAUTH_PATH, title=f"{TITLE} OAuth",
                timeout=self._timeout(deadline),
                data={"grant_type": "client_credentials", "client_id": self.client_id,
                      "client_secret": self.client_secret, "scope": SCOPE},
                headers={"Accept": "application/json"},
            )
            if response.status_code in (400, 401, 403):
                error = _field(json_of(response, TITLE), "error") or "refused"
                raise UpstreamError(f"HMRC refused our client credentials ({error})",
                                    Fault.REFUSED, code="HMRC_CREDENTIALS_REFUSED")
            if response.status_code != 200:
                raise HTTP_FAULTS.fault(response, f"{TITLE} OAuth")
            body = json_of(response, TITLE)
            token: str | None = _field(body, "access_token")
            try:
                expires_in = float(body.get("expires_in", 0))
            except (TypeError, ValueError, AttributeError) as e:
                raise UpstreamError("HMRC answered a token without a usable expiry",
                                    Fault.BAD_RESPONSE) from e
            if not token:
                raise UpstreamError("HMRC answered a token response without access_token",
                                    Fault.BAD_RESPONSE)
            self._token = token
            self._expires_at = time.monotonic() + max(0.0, expires_in - RENEW_BEFORE_S)
            return token

    # -- answers ---------------------------------------------------------------------------------

    def _read(self, response: requests.Response, with_requester: bool) -> SourceAnswer:
        status = response.status_code
        if status == 200:
            return parse(json_of(response, TITLE), with_requester)
        if status in (400, 403, 404):
            body = json_of(response, TITLE)
            message = str(_field(body, "message") or "")
            code = str(_field(body, "code") or "")
            if "requester" in message.lower():
                raise UpstreamError(f"HMRC refused our requester VRN (HTTP {status})",
                                    Fault.REFUSED, code="HMRC_REQUESTER_REFUSED")
            if status == 404:
                return SourceAnswer(False, detail="HMRC has no VAT registration with that "
                                    "number.")
            if status == 400:
                return SourceAnswer(False, detail="HMRC refused the number's format.")
            raise UpstreamError(f"HMRC refused the call (HTTP 403 {code})", Fault.REFUSED,
                                code="HMRC_FORBIDDEN")
        if status == 401:
            raise UpstreamError("HMRC refused our access token twice", Fault.REFUSED,
                                code="HMRC_CREDENTIALS_REFUSED")
        raise HTTP_FAULTS.fault(response, TITLE)


def _field(body: Any, name: str) -> Any:
    return body.get(name) if isinstance(body, dict) else None


def parse(body: Any, with_requester: bool) -> SourceAnswer:
    """A :class:`SourceAnswer` from a 200 body; a body without its required parts is
    ``Fault.BAD_RESPONSE``.

    >>> parse({"target": {"name": "ACME LTD", "vatNumber": "980780684", "address": {
    ...     "line1": "1 High St", "postcode": "SW1A 1AA", "countryCode": "GB"}},
    ...     "processingDate": "2026-11-30T12:00:00+00:00"}, False).address
    '1 High St\\nSW1A 1AA\\nGB'
    """
    try:
        target = body["target"]
        address = target.get("address") or {}
        name = str(target["name"]).strip() or None
        processed = str(body["processingDate"])[:10]
        consultation = body.get("consultationNumber") if with_requester else None
        if with_requester and not consultation:
            raise KeyError("consultationNumber")
        return SourceAnswer(
            True,
            name=name,
            address=join_lines(*(address.get(f"line{i}") for i in range(1, 6)),
                               address.get("postcode"), address.get("countryCode")),
            consultation_number=consultation,
            request_date=processed,
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"HMRC answer has an unexpected shape: {type(e).__name__}",
                            Fault.BAD_RESPONSE) from e
