"""The project's exception tree and its one RFC 9457 ``application/problem+json`` handler.

Every error response of every service goes through :func:`problem_response`: a
:class:`Trace30Error` raised anywhere, a werkzeug ``HTTPException`` (404, 405, ...), a
request-validation error from webargs/flask-smorest, and an unhandled exception (500, whose
traceback is logged, never returned).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

import redis
from flask import Flask, Response, json, request
from werkzeug.exceptions import HTTPException, InternalServerError

from shared.context import request_id

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"
TYPE_BASE = "https://trace30.dev/problems/"


class Trace30Error(Exception):
    """Base of every error trace30 turns into a problem response.

    Subclasses set ``status``, ``title`` and ``slug`` (the last part of the problem ``type`` URI).
    """

    status: int = 500
    title: str = "Internal server error"
    slug: str = "internal"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = dict(errors) if errors else None
        self.headers = dict(headers) if headers else {}


class BadRequest(Trace30Error):
    """The request is malformed or fails validation; ``errors`` names the fields at fault."""

    status, title, slug = 400, "Bad request", "bad-request"


class Unauthorized(Trace30Error):
    """No or a wrong bearer token."""

    status, title, slug = 401, "Unauthorized", "unauthorized"

    def __init__(self, detail: str | None = None, **kw: Any) -> None:
        kw.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="trace30"'})
        super().__init__(detail, **kw)


class Forbidden(Trace30Error):
    """The credentials are valid but lack the scope the route needs."""

    status, title, slug = 403, "Forbidden", "forbidden"


class NotFound(Trace30Error):
    """The resource does not exist."""

    status, title, slug = 404, "Not found", "not-found"


class Conflict(Trace30Error):
    """The request conflicts with what is stored."""

    status, title, slug = 409, "Conflict", "conflict"


class ContentTooLarge(Trace30Error):
    """The request body is larger than the route accepts (``TRACE30_MAX_BODY_BYTES``)."""

    status, title, slug = 413, "Content too large", "content-too-large"


class TooManyRequests(Trace30Error):
    """The client made too many requests; ``headers`` carries ``Retry-After``."""

    status, title, slug = 429, "Too many requests", "too-many-requests"


class ServiceUnavailable(Trace30Error):
    """A dependency the service needs to answer at all (not an upstream verdict) is down."""

    status, title, slug = 503, "Service unavailable", "unavailable"


class ConfigError(RuntimeError):
    """The configuration does not allow the service to start; the message says what to set."""


#: Characters of a path kept as they are in ``instance`` (RFC 3986 pchar and "/").
_PATH_SAFE = "/:@!$&'()*+,;="


def _instance() -> str:
    """The request's path as a URI reference: a path that the client sent with control
    characters or non-ASCII letters (percent-encoded) is given back percent-encoded.

    >>> from flask import Flask
    >>> with Flask(__name__).test_request_context("/v1/traders/a%00b%C3%A9"):
    ...     _instance()
    '/v1/traders/a%00b%C3%A9'
    """
    path = request.path
    if path.isascii() and path.isprintable() and " " not in path and "%" not in path:
        return path
    return quote(path, safe=_PATH_SAFE, errors="backslashreplace")


def problem(
    status: int,
    title: str,
    detail: str | None = None,
    *,
    slug: str | None = None,
    errors: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Build an RFC 9457 problem document for the current request."""
    body: dict[str, Any] = {
        "type": TYPE_BASE + (slug or str(status)),
        "title": title,
        "status": status,
        "detail": detail or title,
        "instance": _instance() if request else None,
    }
    if errors:
        body["errors"] = errors
    rid = request_id()
    if rid:
        body["request_id"] = rid
    return body


def problem_response(
    body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> Response:
    """Serialise a problem document with the ``application/problem+json`` media type."""
    resp = Response(json.dumps(body), status=body["status"], mimetype=PROBLEM_JSON)
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def _http_exception_errors(exc: HTTPException) -> Mapping[str, Any] | None:
    """Field errors that webargs/flask-smorest attach to the exception, flattened by location."""
    data = getattr(exc, "data", None) or {}
    messages = data.get("errors") or data.get("messages")
    if not messages:
        return None
    # webargs nests messages by location ({"json": {"field": [...]}}); the location adds nothing
    # for a client, so a single location is unwrapped.
    if isinstance(messages, dict) and len(messages) == 1:
        (loc, inner), = messages.items()
        if loc in {"json", "query", "headers", "form", "files", "view_args", "path"} and isinstance(
            inner, dict
        ):
            return inner
    return messages


def handle_http_exception(exc: HTTPException) -> Response:
    """Turn any werkzeug HTTP exception (404, 405, a validation abort, a 500) into a problem."""
    status = exc.code or 500
    if status >= 500:
        original = getattr(exc, "original_exception", None)
        if original is not None:
            log.error("unhandled error", exc_info=original)
        body = problem(status, "Internal server error", "An unexpected error occurred.")
        return problem_response(body)
    errors = _http_exception_errors(exc)
    detail = exc.description
    if errors:
        status = 400  # validation errors are the client's fault: one status for all of them
        detail = "The request has invalid or missing fields: " + ", ".join(sorted(map(str, errors)))
    data = getattr(exc, "data", None) or {}
    if "message" in data:
        detail = str(data["message"])
    body = problem(status, exc.name, detail, errors=errors)
    headers = dict(data.get("headers") or {})
    if status == 405:
        headers.update({k: v for k, v in exc.get_headers() if k.lower() == "allow"})
    return problem_response(body, headers)


def handle_trace30_error(exc: Trace30Error) -> Response:
    """Turn a :class:`Trace30Error` into a problem response; 5xx are logged with traceback."""
    if exc.status >= 500:
        log.error("%s: %s", type(exc).__name__, exc.detail, exc_info=exc)
    body = problem(exc.status, exc.title, exc.detail, slug=exc.slug, errors=exc.errors)
    return problem_response(body, exc.headers)


#: Seconds a client is told to wait (``Retry-After``) when one of our own stores is down.
STORE_RETRY_AFTER_S = 5


def store_unavailable(what: str) -> Callable[[Exception], Response]:
    """A handler answering an outage of one of our own stores (``what``: "the evidence log")
    with 503 and ``Retry-After``: the request may be repeated as it is, nothing was lost."""

    def handler(exc: Exception) -> Response:
        log.warning("store unavailable", extra={"store": what, "error": type(exc).__name__})
        body = problem(503, "Service unavailable",
                       f"{what[0].upper()}{what[1:]} is unavailable; try again shortly.",
                       slug="unavailable")
        return problem_response(body, {"Retry-After": str(STORE_RETRY_AFTER_S)})

    return handler


def init_app(app: Flask) -> None:
    """Register the problem handlers on ``app``."""
    for exc in (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
        app.register_error_handler(exc, store_unavailable("the cache (Redis)"))
    app.register_error_handler(Trace30Error, handle_trace30_error)
    app.register_error_handler(HTTPException, handle_http_exception)
    # Unhandled exceptions reach Flask as InternalServerError with ``original_exception`` set;
    # handling that class (not bare Exception) keeps debug-mode tracebacks and never hides a bug.
    app.register_error_handler(InternalServerError, handle_http_exception)
