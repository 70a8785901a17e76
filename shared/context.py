"""The request id and trace context of the work in hand, kept in :mod:`contextvars`.

One home for "which request is this": the JSON log formatter reads it (inside a request or
not), :class:`services.gateway.upstreams.ServiceClient` forwards it (``X-Request-ID`` and a W3C
``traceparent``), and the batch worker sets it from the job's meta. A Flask request sets it in
:mod:`shared.logs`; a background thread sets its own per item it handles (:func:`bound`).

Context variables do not cross into a thread pool by themselves: a task submitted to a
``ThreadPoolExecutor`` runs in the worker thread's own context. Submit through :func:`submit`,
which runs the task in a copy of the caller's context (the OpenTelemetry context rides along:
it is a context variable too).

The trace context follows W3C Trace Context (https://www.w3.org/TR/trace-context/): an incoming
``traceparent`` is parsed strictly (:meth:`TraceParent.parse`); anything malformed is ignored
and a new trace started, never an error.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass
from typing import ParamSpec, TypeVar

REQUEST_ID_HEADER = "X-Request-ID"
TRACEPARENT_HEADER = "traceparent"

#: What a request id may look like when a caller sends one (else a new one is made).
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
#: version-traceid-parentid-flags, lower-case hex only (W3C Trace Context, level 1).
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$")
_ZERO_TRACE, _ZERO_SPAN = "0" * 32, "0" * 16
SAMPLED = 0x01

P = ParamSpec("P")
T = TypeVar("T")


@dataclass(frozen=True)
class TraceParent:
    """A W3C trace context: the trace, this hop's span (the parent of the next hop) and flags.

    >>> tp = TraceParent.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
    >>> tp.trace_id, tp.span_id, tp.sampled
    ('4bf92f3577b34da6a3ce929d0e0e4736', '00f067aa0ba902b7', True)
    >>> child = tp.child()
    >>> child.trace_id == tp.trace_id and child.span_id != tp.span_id
    True
    >>> TraceParent.parse("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01") is None
    True
    """

    trace_id: str
    span_id: str
    flags: int = 0

    @classmethod
    def parse(cls, header: str | None) -> TraceParent | None:
        """The trace context of a ``traceparent`` header, or None if it is not a valid one.

        Strict as the W3C spec asks: lower-case hex of the exact lengths, version ``ff``
        refused, an all-zero trace or parent id refused, version ``00`` with nothing after
        the flags; a later version may append fields after a ``-`` (read as version 00).

        >>> TraceParent.parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x")
        >>> TraceParent.parse("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-03-x").flags
        1
        >>> TraceParent.parse("00-" + "0" * 32 + "-00f067aa0ba902b7-01")
        """
        if not header or len(header) > 512:
            return None
        match = _TRACEPARENT.match(header.strip(" \t"))
        if match is None:
            return None
        version, trace_id, span_id, flags, rest = match.groups()
        if version == "ff" or (version == "00" and rest is not None):
            return None
        if trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
            return None
        # Only the sampled flag is defined: the other bits are not passed on (spec, 3.2.2.5).
        return cls(trace_id, span_id, int(flags, 16) & SAMPLED)

    @classmethod
    def new(cls, *, sampled: bool = False) -> TraceParent:
        """The start of a new trace."""
        return cls(secrets.token_hex(16), secrets.token_hex(8), SAMPLED if sampled else 0)

    def child(self) -> TraceParent:
        """A new span of the same trace (the work this process does for its caller)."""
        return TraceParent(self.trace_id, secrets.token_hex(8), self.flags)

    @property
    def sampled(self) -> bool:
        """Whether the caller may have recorded this trace."""
        return bool(self.flags & SAMPLED)

    def header(self) -> str:
        """The ``traceparent`` header naming this span as the parent of the next hop.

        >>> TraceParent("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", 1).header()
        '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01'
        """
        return f"00-{self.trace_id}-{self.span_id}-{self.flags:02x}"


_request_id: ContextVar[str | None] = ContextVar("trace30_request_id", default=None)
_trace: ContextVar[TraceParent | None] = ContextVar("trace30_trace", default=None)


def request_id() -> str | None:
    """The id of the request (or job, or background item) being handled, if any."""
    return _request_id.get()


def trace() -> TraceParent | None:
    """The trace context of the work being handled, if any."""
    return _trace.get()


def safe_request_id(incoming: str | None) -> str:
    """``incoming`` when it is a safe token to log and echo, else a new random id.

    >>> safe_request_id("abc-1")
    'abc-1'
    >>> len(safe_request_id("a b <c>"))
    32
    """
    return incoming if incoming and _SAFE_ID.match(incoming) else new_request_id()


def new_request_id() -> str:
    """A new random request id."""
    return uuid.uuid4().hex


def set_current(request_id: str | None, trace: TraceParent | None) -> None:
    """Make ``request_id`` and ``trace`` those of the current context (a request's start);
    :func:`clear` at its end. Threads that handle items one by one use :func:`bound`."""
    _request_id.set(request_id)
    _trace.set(trace)


def clear() -> None:
    """Forget the request id and trace (a request's end: server threads are reused)."""
    set_current(None, None)


@contextmanager
def bound(request_id: str | None, trace: TraceParent | None = None) -> Iterator[None]:
    """Run the block with ``request_id`` and ``trace`` as the current ones, then restore
    what was there (a background thread's item, a batch job)."""
    rid_token = _request_id.set(request_id)
    trace_token = _trace.set(trace)
    try:
        yield
    finally:
        _trace.reset(trace_token)
        _request_id.reset(rid_token)


def submit(executor: Executor, fn: Callable[P, T], /, *args: P.args,
           **kwargs: P.kwargs) -> Future[T]:
    """``executor.submit(fn, ...)``, with ``fn`` run in a copy of the caller's context, so its
    log lines and outgoing calls carry the caller's request id and trace."""
    context = copy_context()
    return executor.submit(context.run, fn, *args, **kwargs)  # type: ignore[arg-type]


def outgoing_headers(request_id: str | None = None) -> dict[str, str]:
    """The headers that carry the current request id (or ``request_id``) and trace to the
    next service: ``X-Request-ID`` and ``traceparent``. (With OpenTelemetry on, its requests
    instrumentation replaces the ``traceparent`` with its client span's: same trace.)"""
    headers: dict[str, str] = {}
    rid = request_id or _request_id.get()
    if rid:
        headers[REQUEST_ID_HEADER] = rid
    current = _trace.get()
    if current is not None:
        headers[TRACEPARENT_HEADER] = current.header()
    return headers
