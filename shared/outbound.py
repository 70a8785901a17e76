"""Outbound HTTP calls: a fault that arises before a request leaves the process is ours.

An upstream fault (a timeout, a refused connection, a 5xx, a throttle) says something about the
upstream: it is retried, counted by the circuit breaker and answered ``unavailable``. An error
raised while *building* the request (serialising the SOAP or JSON body, preparing the URL or
the headers, encoding a value) says nothing about the upstream: nothing was sent. Taken for an
upstream fault, one trader name that lxml refuses was retried five times and opened the circuit
of a whole VIES member state. So:

- :class:`NotSent` is the one class for "nothing was sent": never retried, never counted by a
  breaker, never ``unavailable``. ``fields`` names the request fields at fault (a 400 naming
  them); without fields it is our own configuration or a bug (a 500, logged with traceback);
- :func:`send` makes one ``requests`` call in two steps, preparing (every error is
  :class:`NotSent`) and sending (only the errors a request that cannot leave raises are
  :class:`NotSent`; the rest is the caller's to translate into upstream faults);
- :func:`unsendable` finds the text fields no XML document can carry (control characters,
  NUL, lone surrogates, U+FFFE/U+FFFF), the defensive second line behind schema validation;
- :func:`check_url` refuses, at start-up, an endpoint setting no request can be sent to.
"""

from __future__ import annotations

import http.client
import re
from collections.abc import Mapping
from typing import Any

import requests
from flask import Flask, Response

from shared.errors import BadRequest, ConfigError, Trace30Error, handle_trace30_error

#: What XML 1.0 allows (the ``Char`` production); anything else cannot go into a SOAP request.
_NOT_XML_CHAR = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")

#: Raised by ``requests``/``http.client`` for a request that cannot leave the process.
LOCAL_ERRORS: tuple[type[BaseException], ...] = (
    requests.exceptions.InvalidURL,  # InvalidProxyURL too
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    requests.exceptions.InvalidHeader,
    requests.exceptions.URLRequired,
    requests.exceptions.InvalidJSONError,
    http.client.InvalidURL,
    UnicodeError,  # a header value outside latin-1, a body that cannot be encoded
)

UNSENDABLE = "Contains characters that cannot be sent (control characters, NUL, or invalid " \
    "Unicode)."


class NotSent(Exception):
    """The request was not sent: building it failed. Not an upstream fault.

    ``fields`` maps each request field at fault to what is wrong with it; empty when the fault
    is ours (configuration, a bug). Messages never carry the values (personal data).
    """

    def __init__(self, message: str, fields: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.fields = dict(fields or {})


def unsendable(values: Mapping[str, str | None]) -> dict[str, str]:
    """The fields among ``values`` whose text cannot be sent, each with the reason.

    >>> list(unsendable({"name": "ACME\\x01 GmbH", "city": "Köln", "street": None}))
    ['name']
    >>> unsendable({"name": "A\\ud800"}) != {}, unsendable({"name": "tab\\tok"})
    (True, {})
    """
    return {
        name: UNSENDABLE
        for name, value in values.items()
        if value is not None and _NOT_XML_CHAR.search(value)
    }


def send(session: requests.Session, method: str, url: str, *, timeout: tuple[float, float],
         what: str, **kwargs: Any) -> requests.Response:
    """One call, as ``session.request`` makes it; a request that cannot leave is
    :class:`NotSent` (``what`` names the upstream in its message). Every other exception
    (``requests.Timeout``, ``requests.ConnectionError``, ...) is the caller's to translate."""
    try:
        prepared = session.prepare_request(requests.Request(method.upper(), url, **kwargs))
        settings = session.merge_environment_settings(prepared.url or url, {}, None, None, None)
    except Exception as e:
        raise NotSent(f"The request to {what} could not be built ({type(e).__name__}).") from e
    try:
        return session.send(prepared, timeout=timeout, allow_redirects=True, **settings)
    except LOCAL_ERRORS as e:
        raise NotSent(f"The request to {what} could not be sent ({type(e).__name__}).") from e


def check_url(url: str | None, setting: str) -> None:
    """Refuse to start with an endpoint setting no request can be sent to.

    >>> check_url("https://ec.europa.eu/x", "VIES_URL")
    >>> check_url("ec.europa.eu/x", "VIES_URL")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_VIES_URL is not a usable http(s) URL (MissingSchema): ...
    """
    try:
        prepared = requests.Request("POST", url).prepare()
        if not (prepared.url or "").startswith(("http://", "https://")):
            raise requests.exceptions.InvalidSchema(url)
    except Exception as e:
        raise ConfigError(
            f"TRACE30_{setting} is not a usable http(s) URL ({type(e).__name__}): set it to the "
            "endpoint's full address, e.g. https://host/path."
        ) from e


def problem_for(e: NotSent, what: str) -> Trace30Error:
    """The problem to answer for a request that could not be sent to ``what``.

    With fields at fault, a 400 naming them; without, a 500 (our configuration or a bug).
    """
    if e.fields:
        names = ", ".join(sorted(e.fields))
        return BadRequest(f"The request has fields that cannot be sent to {what}: {names}.",
                          errors={name: [msg] for name, msg in e.fields.items()})
    return Trace30Error(f"The request to {what} could not be built; nothing was sent. The "
                        "service log has the cause.")


def init_app(app: Flask, what: str) -> None:
    """Answer :class:`NotSent` reaching a view of ``app`` as :func:`problem_for` says."""

    def handle(e: NotSent) -> Response:
        problem = problem_for(e, what)
        problem.__cause__ = e  # a 5xx is logged with its traceback, the cause's included
        return handle_trace30_error(problem)

    app.register_error_handler(NotSent, handle)
