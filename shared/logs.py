"""JSON logging with a request id and trace id, and one access-log line per request.

Every record is one JSON object on stderr. The request id comes from the caller's
``X-Request-ID`` (when it is a safe token) or is made here, is echoed in the response header
and is added to every record logged while the request runs, so a check can be followed from the
gateway to VIES and back. The trace comes from the caller's W3C ``traceparent`` (when valid;
else a new trace starts) or from OpenTelemetry's server span when tracing is on
(:mod:`shared.tracing`); records carry its ``trace_id`` and ``span_id``. Both live in
:mod:`shared.context` (context variables), so records logged in the request's thread pools, in
background threads and in batch jobs carry them too. Request bodies are never logged: they hold
personal data.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from flask import Flask, Response, g, request

from shared import context, tracing
from shared.context import REQUEST_ID_HEADER, TRACEPARENT_HEADER, TraceParent

__all__ = ["REQUEST_ID_HEADER", "JsonFormatter", "configure", "current_request_id", "init_app"]
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
        request_id, trace = context.request_id(), context.trace()
        if request_id:
            out["request_id"] = request_id
        if trace is not None:
            out["trace_id"], out["span_id"] = trace.trace_id, trace.span_id
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


#: The id of the request (or job) being handled, to pass on to the next service.
current_request_id = context.request_id


def _start_request() -> None:
    g.started = time.perf_counter()
    # OpenTelemetry's server span when tracing is on (it read the traceparent); else ours.
    trace = tracing.current()
    if trace is None:
        incoming = TraceParent.parse(request.headers.get(TRACEPARENT_HEADER))
        trace = incoming.child() if incoming is not None else TraceParent.new()
    context.set_current(context.safe_request_id(request.headers.get(REQUEST_ID_HEADER)), trace)


def _end_request(response: Response) -> Response:
    response.headers[REQUEST_ID_HEADER] = context.request_id() or ""
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


def _clear_request(_exc: BaseException | None) -> None:
    # Server threads serve one request after another: the next must not inherit this one's.
    context.clear()


def init_app(app: Flask, service: str) -> None:
    """Configure JSON logs for ``service`` and tag every request with an id."""
    configure(service, app.config.get("LOG_LEVEL", "INFO"))
    app.before_request(_start_request)
    app.after_request(_end_request)
    app.teardown_request(_clear_request)
