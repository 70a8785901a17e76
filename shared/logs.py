"""JSON logging with a request id, and one access-log line per request.

Every record is one JSON object on stderr. The request id comes from the caller's
``X-Request-ID`` (when it is a safe token) or is made here, is echoed in the response header
and is added to every record logged while the request runs, so a check can be followed from the
gateway to VIES and back. Request bodies are never logged: they hold personal data.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from typing import Any, TextIO

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-ID"
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_STD_ATTRS = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}

access_log = logging.getLogger("trace30.access")


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line; ``extra={...}`` fields are kept as keys."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            out["request_id"] = g.request_id
        for key, value in vars(record).items():
            if key not in _STD_ATTRS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


class _JsonHandler(logging.StreamHandler[TextIO]):
    """The handler :func:`configure` adds (once per process)."""


def configure(service: str, level: str = "INFO") -> None:
    """Send the root logger's records as JSON to stderr (once per process)."""
    root = logging.getLogger()
    for handler in root.handlers:
        if isinstance(handler, _JsonHandler):
            handler.setFormatter(JsonFormatter(service))
            break
    else:
        handler = _JsonHandler(sys.stderr)
        handler.setFormatter(JsonFormatter(service))
        root.addHandler(handler)
    root.setLevel(level.upper())


def current_request_id() -> str | None:
    """The id of the request being served, to pass on to the next service."""
    if has_request_context():
        request_id: str | None = g.get("request_id")
        return request_id
    return None


def _start_request() -> None:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    g.request_id = incoming if _SAFE_ID.match(incoming) else uuid.uuid4().hex
    request.request_id = g.request_id  # type: ignore[attr-defined]
    g.started = time.perf_counter()


def _end_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = g.get("request_id", "")
    if access_log.isEnabledFor(logging.INFO):
        access_log.info(
            "request",
            extra={
                "method": request.method,
                "path": request.path,
                "status": response.status_code,
                "duration_ms": round((time.perf_counter() - g.get("started", 0)) * 1000, 1),
            },
        )
    return response


def init_app(app: Flask, service: str) -> None:
    """Configure JSON logs for ``service`` and tag every request with an id."""
    configure(service, app.config.get("LOG_LEVEL", "INFO"))
    app.before_request(_start_request)
    app.after_request(_end_request)
