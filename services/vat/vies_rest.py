"""VIES's second front end: the official REST API, the fallback when SOAP is down.

Same data as the SOAP service (:mod:`services.vat.vies`), separate front end, so it often still
answers while SOAP is down or overloaded. :class:`RestVies` implements the same
:class:`~services.vat.vies.Vies` interface and the same fault classification
(:data:`~services.vat.vies.FAULTS`):

- ``POST {base}/check-vat-number`` with JSON ``countryCode``, ``vatNumber`` and, for an
  approximate check, ``requesterMemberStateCode``/``requesterNumber`` and ``traderName``,
  ``traderCompanyType``, ``traderStreet``, ``traderPostalCode``, ``traderCity``. The answer has
  ``valid``, ``requestDate``, ``requestIdentifier`` (the consultation number), ``name``,
  ``address``, the ``trader*`` details and ``trader*Match`` codes (``VALID``, ``INVALID``,
  ``NOT_PROCESSED``).
- Errors are ``{"actionSucceed": false, "errorWrappers": [{"error": "MS_UNAVAILABLE"}]}``,
  sent with HTTP 200 as often as with 4xx/5xx: the body decides, never the status alone.
- ``GET {base}/check-status``: ``{"vow": {"available": true}, "countries": [{"countryCode":
  "DE", "availability": "Available"}, ...]}``, what :meth:`RestVies.status` reads to open a
  member state's circuit before a signup pays for a failing call.
"""

from __future__ import annotations

import json
import logging
from datetime import date
from typing import Any

import requests

from services.vat.vies import TraderQuery, ViesAnswer, ViesFault, clean_text, new_session
from shared import upstream
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError

log = logging.getLogger(__name__)

_MATCH_CODES = {"VALID": "valid", "INVALID": "invalid", "NOT_PROCESSED": "not_processed",
                "1": "valid", "2": "invalid", "3": "not_processed"}
#: Our trader field → the REST API's detail field (its match field adds ``Match``).
_TRADER_FIELDS = {
    "name": "traderName",
    "company_type": "traderCompanyType",
    "street": "traderStreet",
    "postcode": "traderPostalCode",
    "city": "traderCity",
}


class RestVies:
    """VIES over its REST API. Build one per process and share it."""

    def __init__(self, base_url: str, *, connect_timeout_s: float = 3.0,
                 read_timeout_s: float = 10.0, session: requests.Session | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.session = session or new_session()
        self.session.headers["Accept"] = "application/json"

    def ready(self) -> None:
        """Nothing to load: the REST API needs no WSDL or key."""

    def _timeout(self, timeout_s: float | None) -> tuple[float, float]:
        read = min(self.read_timeout_s, timeout_s) if timeout_s else self.read_timeout_s
        return (min(self.connect_timeout_s, read), read)

    def _request(self, method: str, path: str, timeout_s: float | None,
                 **kwargs: Any) -> requests.Response:
        return upstream.send(self.session, method, self.base_url + path, title="VIES REST",
                             timeout=self._timeout(timeout_s), **kwargs)

    def check(
        self,
        *,
        country_code: str,
        number: str,
        trader: TraderQuery | None = None,
        requester: tuple[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> ViesAnswer:
        """See :meth:`services.vat.vies.Vies.check`."""
        body: dict[str, str] = {"countryCode": country_code, "vatNumber": number}
        if requester:
            body["requesterMemberStateCode"], body["requesterNumber"] = requester
        if trader:
            for ours, theirs in _TRADER_FIELDS.items():
                value = getattr(trader, ours)
                if value:
                    body[theirs] = value
        response = self._request("POST", "/check-vat-number", timeout_s, json=body)
        document = _json(response)
        return parse_answer(document, approx=trader is not None or requester is not None)

    def status(self, timeout_s: float | None = None) -> dict[str, str]:
        """Each member state's availability (``Available``, ``Unavailable``, ...) as VIES's
        ``check-status`` reports it; raises :class:`~shared.upstream.UpstreamError`."""
        document = _json(self._request("GET", "/check-status", timeout_s))
        try:
            return {str(c["countryCode"]): str(c["availability"])
                    for c in document["countries"]}
        except (KeyError, TypeError) as e:
            raise UpstreamError(f"VIES check-status has an unexpected shape: {type(e).__name__}",
                                Fault.BAD_RESPONSE) from e


def _json(response: requests.Response) -> Any:
    """The body as JSON; an error envelope is its fault, an HTTP error without one an outage."""
    media_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    try:
        document = response.json() if "json" in media_type else None
    except ValueError:
        document = None
    if document is None:
        if response.status_code >= 400:
            raise UpstreamError(f"VIES REST answered HTTP {response.status_code}",
                                Fault.UNREACHABLE)
        raise UpstreamError("VIES REST answered content that is not JSON", Fault.BAD_RESPONSE)
    if isinstance(document, dict) and document.get("actionSucceed") is False:
        wrappers = document.get("errorWrappers") or [{}]
        code = wrappers[0].get("error") if isinstance(wrappers[0], dict) else None
        raise ViesFault(str(code or "UNKNOWN_FAULT").strip(), "VIES REST")
    if response.status_code >= 400:
        raise UpstreamError(f"VIES REST answered HTTP {response.status_code}", Fault.UNREACHABLE)
    return document


def _date(value: Any) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError as e:
        raise UpstreamError("VIES REST answered an unreadable requestDate",
                            Fault.BAD_RESPONSE) from e


def parse_answer(document: Any, *, approx: bool) -> ViesAnswer:
    """A :class:`~services.vat.vies.ViesAnswer` from a ``check-vat-number`` answer.

    >>> a = parse_answer({"countryCode": "FR", "vatNumber": "19812345676", "valid": True,
    ...     "requestDate": "2026-11-30T10:00:00.000Z", "name": "SAS X",
    ...     "address": "4 RUE DU FOUR\\n75006 PARIS", "requestIdentifier": "WAPIAAAAA1",
    ...     "traderNameMatch": "VALID"}, approx=True)
    >>> a.valid, a.request_date.isoformat(), a.match, a.request_identifier
    (True, '2026-11-30', {'name': 'valid'}, 'WAPIAAAAA1')
    """
    try:
        valid = document["valid"]
        if not isinstance(valid, bool):
            raise TypeError("valid")
        trader: dict[str, str | None] = {}
        match: dict[str, str] = {}
        if approx:
            trader = {ours: clean_text(document.get(theirs))
                      for ours, theirs in _TRADER_FIELDS.items()}
            for ours, theirs in _TRADER_FIELDS.items():
                code = document.get(theirs + "Match")
                if code not in (None, ""):
                    match[ours] = _MATCH_CODES[str(code)]
        return ViesAnswer(
            country_code=str(document["countryCode"]),
            vat_number=str(document.get("vatNumber") or ""),
            valid=valid,
            request_date=_date(document.get("requestDate")),
            name=clean_text(document.get("name")) or trader.get("name"),
            address=clean_text(document.get("address")),
            trader=trader,
            match=match,
            request_identifier=clean_text(document.get("requestIdentifier")),
        )
    except (KeyError, TypeError, AttributeError) as e:
        raise UpstreamError(f"VIES REST answer has an unexpected shape: {type(e).__name__}",
                            Fault.BAD_RESPONSE) from e


__all__ = ["MemberStateStatus", "RestVies", "parse_answer"]


class MemberStateStatus:
    """VIES's ``check-status``, read at most once per ``ttl_s`` by all processes together.

    :meth:`unavailable` says whether VIES itself reports a member state unavailable; the
    checker then opens that state's circuit instead of paying the deadline for a failing
    call. The map is kept in Redis (one key), fetched by one process at a time with a short
    timeout; when check-status cannot be read the answer is "not known to be down".
    """

    def __init__(self, rest: RestVies, store: Store, ttl_s: float, timeout_s: float) -> None:
        self.rest = rest
        self.store = store
        self.ttl_s = ttl_s
        self.timeout_s = timeout_s
        self.key = store.key("vat", "vies-status")

    def unavailable(self, country_code: str) -> bool:
        """Whether VIES's check-status reports ``country_code`` ``Unavailable``; Redis errors
        are the caller's."""
        if self.ttl_s <= 0:
            return False
        raw = self.store.client.get(self.key)
        if raw is None:
            lock_ms = int(self.timeout_s * 1000) + 500
            if not self.store.client.set(self.key + ":lock", "1", nx=True, px=lock_ms):
                return False  # another process is asking right now
            try:
                availability = self.rest.status(timeout_s=self.timeout_s)
                ttl_s = self.ttl_s
            except UpstreamError as e:
                log.warning("VIES check-status unreadable", extra={"fault": e.code})
                availability, ttl_s = {}, min(self.ttl_s, 10.0)
            raw = json.dumps(availability)
            self.store.client.set(self.key, raw, px=max(1, int(ttl_s * 1000)))
        return bool(json.loads(raw).get(country_code) == "Unavailable")
