"""HTTP plumbing the register adapters share: pooled sessions and exception translation.

:func:`request` makes one call with a ``(connect, read)`` timeout and turns whatever goes
wrong into a :class:`~shared.upstream.UpstreamError`: timeouts, refused
connections, 429 (with ``Retry-After``), 401/403, 5xx and other 4xx. 404 and 410 are answers
about the number, so they are returned for the adapter to read (an adapter whose register
answers with other statuses too, such as the KRS's 204 for a deleted entity, names them).

A request that cannot leave the process (a URL, header or body that cannot be built or
encoded) is :class:`shared.outbound.NotSent`, never an ``UpstreamError``: the register was not
asked, so the checker neither retries it nor counts it against the register's circuit. Adapters
put the caller's number in a URL through :func:`segment` (percent-encoded, and refused naming
the field when it holds text no request should carry) or check it with :func:`sendable`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

from shared import outbound, upstream
from shared.upstream import Fault

USER_AGENT = "trace30-registry/0.1 (+https://trace30.dev)"
#: Statuses an adapter reads itself; every other non-2xx is an error.
ANSWERS = frozenset({200, 404, 410})


def new_session(pool_size: int = 10) -> requests.Session:
    """A pooled session for one register (keep-alive saves a TLS handshake per lookup).

    Retries are the checker's business (with backoff and a deadline), never urllib3's.
    """
    return upstream.new_session(USER_AGENT, pool_size, accept="application/json")


#: How the registers name a status they do not read as an answer (the codes the API has always
#: answered): 429 ``UPSTREAM_THROTTLED``, 401/403 ``UPSTREAM_AUTH``, 5xx
#: ``UPSTREAM_SERVER_ERROR`` (with its ``Retry-After``), another 4xx ``UPSTREAM_REJECTED``.
HTTP_FAULTS = upstream.HttpFaults(server_code="UPSTREAM_SERVER_ERROR", refused_code="UPSTREAM_AUTH",
                                  client_error=Fault.REJECTED)


def request(
    session: requests.Session,
    method: str,
    url: str,
    *,
    title: str,
    timeout: tuple[float, float],
    answers: frozenset[int] = ANSWERS,
    **kwargs: Any,
) -> requests.Response:
    """One call to a register; returns responses with a status in ``answers`` (by default
    :data:`ANSWERS`)."""
    response = upstream.send(session, method, url, title=title, timeout=timeout, **kwargs)
    if response.status_code in answers:
        return response
    raise HTTP_FAULTS.fault(response, title)


def sendable(**values: str | None) -> None:
    """Refuse (:class:`~shared.outbound.NotSent` naming the fields) text no request should
    carry: control characters, NUL, invalid Unicode. Schema validation refuses them first;
    this is the line behind it.

    >>> sendable(number="123456789")
    >>> sendable(number="1234\\x00")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.outbound.NotSent: The register request cannot carry these fields: number.
    """
    refused = outbound.unsendable(values)
    if refused:
        raise outbound.NotSent(
            f"The register request cannot carry these fields: {', '.join(sorted(refused))}.",
            refused,
        )


def segment(value: str, field: str = "number") -> str:
    """``value`` as one URL path segment: checked by :func:`sendable` (as ``field``), then
    percent-encoded, so that a ``/``, ``?`` or ``..`` stays inside the segment.

    >>> segment("SC123456"), segment("../admin?x=1")
    ('SC123456', '..%2Fadmin%3Fx%3D1')
    """
    sendable(**{field: value})
    return quote(value, safe="")


def timeouts(connect_s: float, read_s: float, cap_s: float | None) -> tuple[float, float]:
    """``(connect, read)``, each capped by what is left of the deadline.

    >>> timeouts(3, 8, 2.5), timeouts(3, 8, None), timeouts(3, 8, 0.0)
    ((2.5, 2.5), (3, 8), (0.05, 0.05))
    """
    if cap_s is None:
        return (connect_s, read_s)
    cap_s = max(0.05, cap_s)
    return (min(connect_s, cap_s), min(read_s, cap_s))


def address_parts(*, street: Any = None, postcode: Any = None, city: Any = None,
                  country: Any = None) -> dict[str, str] | None:
    """An address in parts, blanks left out; None when nothing is left.

    >>> address_parts(street="Bryggen 5", postcode="5003", city="BERGEN", country=" ")
    {'street': 'Bryggen 5', 'postcode': '5003', 'city': 'BERGEN'}
    >>> address_parts() is None
    True
    """
    given = {"street": street, "postcode": postcode, "city": city, "country": country}
    parts = {k: str(v).strip() for k, v in given.items() if v is not None and str(v).strip()}
    return parts or None


def join_address(*parts: Any) -> str | None:
    """Non-empty parts joined with ", ".

    >>> join_address("PUMA Way 1", None, "91074 Herzogenaurach", "")
    'PUMA Way 1, 91074 Herzogenaurach'
    """
    text = ", ".join(str(p).strip() for p in parts if p is not None and str(p).strip())
    return text or None


class HttpRegister:
    """What every adapter shares: the register's base URL, a pooled session, the timeouts,
    credentials if any, and :meth:`call`, one call through :func:`request` whose timeouts are
    capped by what is left of the caller's deadline. Adapters set ``source`` and ``title``."""

    source = ""
    title = ""

    def __init__(
        self,
        base_url: str,
        *,
        session: requests.Session,
        connect_timeout_s: float = 3.0,
        read_timeout_s: float = 8.0,
        auth: tuple[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.session = session
        self.connect_timeout_s = connect_timeout_s
        self.read_timeout_s = read_timeout_s
        self.auth = auth

    def call(self, method: str, path: str, *, timeout_s: float | None,
             **kwargs: Any) -> requests.Response:
        """``method`` on ``base_url + path``; see :func:`request`."""
        if self.auth is not None:
            kwargs.setdefault("auth", self.auth)
        return request(
            self.session, method, self.base_url + path, title=self.title,
            timeout=timeouts(self.connect_timeout_s, self.read_timeout_s, timeout_s), **kwargs,
        )
