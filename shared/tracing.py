"""OpenTelemetry traces, switched on by ``OTEL_EXPORTER_OTLP_ENDPOINT`` and free when it is not.

With the endpoint set, each process builds one ``TracerProvider`` exporting spans in batches to
``{endpoint}/v1/traces`` (OTLP over HTTP, protobuf), instruments its Flask app (a server span
per request, continuing the caller's ``traceparent``), ``requests`` and ``urllib3`` (a client
span per outgoing call, whose ``traceparent`` it sends; the gateway calls its services through
urllib3's pool directly). Background work (a sweeper's retry, a webhook
delivery, a batch job) runs in a span of its own through :func:`background`.

Unset, nothing of OpenTelemetry is imported (the imports below are inside the functions) and
the request id and trace context of :mod:`shared.context` still travel: ``traceparent`` is read
and forwarded by :mod:`shared.logs` and :class:`services.gateway.upstreams.ServiceClient`.

The provider is this process's alone (``opentelemetry.trace.set_tracer_provider`` is not
called): the instrumentations are handed it, and :func:`shutdown` undoes them, so a test can
switch tracing on and off again in one process.

The SDK reads its other standard variables itself: ``OTEL_EXPORTER_OTLP_HEADERS`` (e.g. an
API key of the collector), ``OTEL_TRACES_SAMPLER`` and ``OTEL_TRACES_SAMPLER_ARG``,
``OTEL_RESOURCE_ATTRIBUTES``, ``OTEL_BSP_*`` (batching).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from flask import Flask

from shared import context
from shared.context import TraceParent

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

log = logging.getLogger(__name__)

#: Paths whose requests get no span: probes and scrapes would drown the traces.
EXCLUDED_URLS = "/healthz,/readyz,/metrics"
TRACES_PATH = "/v1/traces"

_lock = threading.Lock()
_provider: TracerProvider | None = None


def enabled(settings: Mapping[str, Any]) -> bool:
    """Whether ``settings`` switch tracing on (an OTLP endpoint, or a test's exporter)."""
    return bool(settings.get("OTEL_EXPORTER_OTLP_ENDPOINT") or settings.get("OTEL_SPAN_EXPORTER"))


def configure(settings: Mapping[str, Any], service: str) -> bool:
    """Set up this process's tracing from ``settings`` (once; later calls keep the first
    provider) and instrument ``requests`` and ``urllib3``; return whether tracing is on.

    A test may hand an exporter as ``settings["OTEL_SPAN_EXPORTER"]`` (e.g. the SDK's
    ``InMemorySpanExporter``): its spans are exported one by one, at once.
    """
    global _provider  # one provider per process, as one JSON log handler
    if not enabled(settings):
        return False
    with _lock:
        if _provider is not None:
            return True
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
        from opentelemetry.sdk.resources import SERVICE_NAME, Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import (
            BatchSpanProcessor,
            SimpleSpanProcessor,
            SpanExporter,
        )

        name = settings.get("OTEL_SERVICE_NAME") or f"trace30-{service}"
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: name}))
        exporter: SpanExporter | None = settings.get("OTEL_SPAN_EXPORTER")
        if exporter is not None:
            provider.add_span_processor(SimpleSpanProcessor(exporter))
        else:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            endpoint = str(settings["OTEL_EXPORTER_OTLP_ENDPOINT"]).rstrip("/") + TRACES_PATH
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(
                endpoint=endpoint, timeout=settings["OTEL_EXPORTER_OTLP_TIMEOUT"])))
            log.info("tracing on", extra={"otlp_endpoint": endpoint, "otel_service": name})
        RequestsInstrumentor().instrument(tracer_provider=provider)
        # the gateway's calls to its services go through urllib3's pool directly
        # (shared.upstream.internal_pool); a call through requests gets requests' span alone
        # (it suppresses urllib3's below it)
        URLLib3Instrumentor().instrument(tracer_provider=provider)
        _provider = provider
        return True


def init_app(app: Flask, service: str) -> None:
    """Trace ``app``'s requests when its settings switch tracing on (before
    :func:`shared.logs.init_app`: the server span must exist when the log context is set)."""
    if not configure(app.config, service):
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor.instrument_app(  # type: ignore[no-untyped-call]
        app, tracer_provider=_provider, excluded_urls=EXCLUDED_URLS)


def shutdown() -> None:
    """Export what is left and switch tracing off in this process (end of a worker, a test)."""
    global _provider  # the process's provider, see configure
    with _lock:
        if _provider is None:
            return
        from opentelemetry.instrumentation.requests import RequestsInstrumentor
        from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor

        RequestsInstrumentor().uninstrument()
        URLLib3Instrumentor().uninstrument()
        _provider.shutdown()
        _provider = None


def current() -> TraceParent | None:
    """The trace context of OpenTelemetry's current span (the request's server span), or
    None when tracing is off or no span is recording."""
    if _provider is None:
        return None
    from opentelemetry import trace

    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return TraceParent(trace.format_trace_id(span_context.trace_id),
                       trace.format_span_id(span_context.span_id),
                       int(span_context.trace_flags) & context.SAMPLED)


@contextmanager
def background(name: str, *, request_id: str | None,
               parent: TraceParent | None = None) -> Iterator[TraceParent]:
    """Run the block as one item of background work: with ``request_id`` (a new one if None)
    as the current request id, in a span ``name`` of ``parent``'s trace (a new trace if None),
    recorded when tracing is on. Yields the block's trace context."""
    rid = request_id or context.new_request_id()
    if _provider is None:
        own = parent.child() if parent is not None else TraceParent.new()
        with context.bound(rid, own):
            yield own
        return
    from opentelemetry import trace
    from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

    carrier = {context.TRACEPARENT_HEADER: parent.header()} if parent is not None else {}
    parent_context = TraceContextTextMapPropagator().extract(carrier)
    tracer = _provider.get_tracer(__name__)
    with tracer.start_as_current_span(name, context=parent_context,
                                      kind=trace.SpanKind.CONSUMER,
                                      attributes={"trace30.request_id": rid}):
        own = current() or TraceParent.new()
        with context.bound(rid, own):
            yield own
