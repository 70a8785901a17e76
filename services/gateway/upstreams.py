"""Calls from the gateway to the VAT, registry and payment services.

One :class:`ServiceClient` per service, built once per process with a pool of kept-alive
connections (:func:`shared.upstream.internal_pool`: urllib3, without requests). Each call
carries the internal bearer token, the request id and the W3C ``traceparent``
(:func:`shared.context.outgoing_headers`), and has a connect timeout and a read timeout bounded
by what is left of the verification's deadline. Nothing here raises for an upstream problem: a
timeout, a refused connection or a 5xx becomes an ``unavailable`` answer (which the verdict
turns into ``pending``), and a 400 (the service could not read what the trader submitted)
becomes ``input_invalid`` with the service's field errors.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any
from urllib.parse import urlsplit

import urllib3
from urllib3.exceptions import HTTPError, MaxRetryError, NewConnectionError
from urllib3.exceptions import TimeoutError as TransportTimeout

from services.gateway.answers import InputInvalid, Unavailable
from shared.context import outgoing_headers
from shared.upstream import internal_pool

log = logging.getLogger(__name__)


#: What :meth:`ServiceClient.call` answers: the service's own JSON object (one of the result
#: types of :mod:`services.gateway.answers`, by service), or the gateway's own answer.
Answer = dict[str, Any] | Unavailable | InputInvalid


class ServiceClient:
    """POST JSON to one trace30 service and always get an answer dict back."""

    def __init__(self, name: str, url: str, *, token: str, connect_timeout_s: float,
                 read_timeout_s: float, pool_size: int = 32) -> None:
        self.name = name
        self.url = url
        self.token = token
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.pool = internal_pool(url, pool_size)  # no proxy lookups, no requests layers
        parts = urlsplit(url)
        self.path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")

    def call(self, body: dict[str, Any], *, deadline: float,
             request_id: str | None = None) -> Answer:
        """The service's answer to ``body``, or an ``unavailable``/``input_invalid`` answer.

        ``request_id``: the id to send (default: the current one, :mod:`shared.context`)."""
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return _unavailable("GATEWAY_DEADLINE", "No time was left to ask the service.")
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json",
                   **outgoing_headers(request_id)}
        started = time.monotonic()
        try:
            resp = self.pool.urlopen(
                "POST", self.path, body=json.dumps(body, allow_nan=False).encode(),
                headers=headers, redirect=False,
                timeout=urllib3.Timeout(connect=self.connect_timeout_s,
                                        read=min(self.read_timeout_s, remaining)),
            )
        except (TransportTimeout, MaxRetryError, HTTPError) as e:
            fault = e.reason if isinstance(e, MaxRetryError) and e.reason is not None else e
            # urllib3's refused connection is a kind of connect timeout: not ours (as requests)
            if isinstance(fault, TransportTimeout) and not isinstance(fault, NewConnectionError):
                return self._logged(_unavailable("SERVICE_TIMEOUT", f"The {self.name} service "
                                                 "did not answer in time."), started)
            return self._logged(_unavailable("SERVICE_UNREACHABLE", f"The {self.name} service "
                                             f"could not be reached ({type(fault).__name__})."),
                                started)
        if resp.status == 200:
            try:
                answer = json.loads(resp.data)
            except ValueError:
                answer = None
            if not isinstance(answer, dict) or not isinstance(answer.get("status"), str):
                return self._logged(_unavailable("SERVICE_BAD_RESPONSE", "Unreadable answer."),
                                    started)
            return answer
        if resp.status in (400, 422):
            problem = _json_or_empty(resp)
            invalid: InputInvalid = {"status": "input_invalid",
                                     "errors": problem.get("errors") or {},
                                     "detail": problem.get("detail")}
            return invalid
        return self._logged(_unavailable(f"SERVICE_HTTP_{resp.status}",
                                         f"The {self.name} service answered "
                                         f"HTTP {resp.status}."), started)

    def _logged(self, answer: Unavailable, started: float) -> Unavailable:
        log.warning("service call failed", extra={
            "upstream": self.name, "code": answer["error"]["code"],
            "ms": round((time.monotonic() - started) * 1000, 1)})
        return answer


def _json_or_empty(resp: urllib3.BaseHTTPResponse) -> dict[str, Any]:
    try:
        body = json.loads(resp.data)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _unavailable(code: str, message: str) -> Unavailable:
    return {"status": "unavailable", "error": {"code": code, "retryable": True,
                                               "message": message}}
