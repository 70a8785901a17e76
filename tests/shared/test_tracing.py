"""OpenTelemetry: off and not even imported without ``OTEL_EXPORTER_OTLP_ENDPOINT``; on, a
gateway request is one trace from the caller's ``traceparent`` through the fan-out's pool
threads to the VAT service, exported over OTLP/HTTP."""

from __future__ import annotations

import io
import json
import logging
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import requests
from flask import Flask

from services.gateway import create_app, shutdown
from shared import tracing
from shared.config import load
from shared.logs import JsonFormatter
from tests.conftest import INTERNAL_TOKEN, REDIS_URL, ROOT, Processes, Suite, gunicorn_argv
from tests.e2e.test_suite import README_TRADER
from tests.gateway.conftest import API_KEY, api_keys

TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_ID = "b7ad6b7169203331"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
SERVER, CLIENT, CONSUMER = 2, 3, 5  # OTLP's SpanKind numbers
HEADERS = {"Authorization": f"Bearer {API_KEY}", "Prefer": "wait=20",
           "traceparent": TRACEPARENT, "X-Request-ID": "rid-traced"}


def test_the_otel_settings_are_read_under_their_standard_names() -> None:
    settings = load({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318",
                     "OTEL_SERVICE_NAME": "edge", "OTEL_EXPORTER_OTLP_TIMEOUT": "2.5",
                     "TRACE30_OTEL_SERVICE_NAME": "not-this"})
    assert settings["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://collector:4318"
    assert settings["OTEL_SERVICE_NAME"] == "edge"
    assert settings["OTEL_EXPORTER_OTLP_TIMEOUT"] == 2.5
    assert load({})["OTEL_EXPORTER_OTLP_ENDPOINT"] is None
    assert not tracing.enabled(load({}))


def test_a_bad_timeout_is_refused_under_its_own_name() -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^OTEL_EXPORTER_OTLP_TIMEOUT must be a float"):
        load({"OTEL_EXPORTER_OTLP_TIMEOUT": "soon"})


def test_off_tracing_imports_none_of_the_sdk_and_patches_nothing() -> None:
    """A service built and serving without the endpoint imports neither the SDK's tracing, nor
    an exporter or instrumentation, and leaves ``requests`` and ``urllib3`` as they are.
    (redis-py imports the SDK's metrics module by itself when the SDK is installed: not ours
    to avoid.)"""
    code = (
        "import sys, requests, urllib3\n"
        "send = requests.Session.send\n"
        "urlopen = urllib3.HTTPConnectionPool.urlopen\n"
        "from services.vat import create_app\n"
        "app = create_app({'SANDBOX': True, 'INTERNAL_TOKEN': 't'})\n"
        "assert app.test_client().get('/healthz', headers={'traceparent': "
        f"'{TRACEPARENT}'}}).status_code == 200\n"
        "assert requests.Session.send is send\n"
        "assert urllib3.HTTPConnectionPool.urlopen is urlopen\n"
        "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace', "
        "'opentelemetry.instrumentation', 'opentelemetry.exporter'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the JSON log handler writes while the test runs (root logger, INFO)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("gateway"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def traced_gateway(gateway_config: dict) -> Iterator[tuple[Flask, Any]]:
    """A gateway whose spans go to the SDK's in-memory exporter; tracing off afterwards."""
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    app = create_app({**gateway_config, "OTEL_SPAN_EXPORTER": exporter})
    yield app, exporter
    shutdown(app)
    tracing.shutdown()


def test_a_gateway_request_is_one_trace_through_its_pools(
        traced_gateway: tuple[Flask, Any], lines: io.StringIO) -> None:
    from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

    app, exporter = traced_gateway
    resp = app.test_client().post("/v1/verifications", json=README_TRADER, headers=HEADERS)
    assert resp.status_code == 200, resp.get_json()
    spans = exporter.get_finished_spans()
    server = [s for s in spans if s.kind == SpanKind.SERVER]
    assert len(server) == 1
    (request_span,) = server
    assert format_trace_id(request_span.context.trace_id) == TRACE_ID
    assert request_span.parent is not None and format_span_id(request_span.parent.span_id) == \
        PARENT_ID
    # the three service calls, made on the fan-out's pool threads, are children of the request
    calls = [s for s in spans if s.kind == SpanKind.CLIENT]
    assert len(calls) == 3
    for call in calls:
        assert call.context.trace_id == request_span.context.trace_id
        assert call.parent is not None and call.parent.span_id == request_span.context.span_id
    # and so are the log lines, the settling one written on a pool thread too
    settled = next(json.loads(line) for line in lines.getvalue().splitlines()
                   if '"verification settled"' in line)
    assert settled["trace_id"] == TRACE_ID and settled["request_id"] == "rid-traced"
    assert settled["span_id"] == format_span_id(request_span.context.span_id)
    assert resp.headers["X-Request-ID"] == "rid-traced"


class OtlpReceiver:
    """A stand-in OTLP/HTTP collector on loopback: keeps the spans POSTed to /v1/traces."""

    def __init__(self) -> None:
        self.spans: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
                    ExportTraceServiceRequest,
                    ExportTraceServiceResponse,
                )

                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = self.path == "/v1/traces" and \
                    self.headers["Content-Type"] == "application/x-protobuf"
                if ok:
                    receiver.collect(ExportTraceServiceRequest.FromString(body))
                answer = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200 if ok else 404)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def collect(self, export: Any) -> None:
        for resource_spans in export.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                for span in scope.spans:
                    self.spans.append({
                        "service": attrs.get("service.name"), "name": span.name,
                        "trace_id": span.trace_id.hex(), "span_id": span.span_id.hex(),
                        "parent_id": span.parent_span_id.hex(), "kind": span.kind})

    def wait_for(self, services: set[str], trace_id: str = TRACE_ID, *, kind: int = SERVER,
                 timeout_s: float = 20) -> list[dict[str, Any]]:
        """The spans of trace ``trace_id`` once each of ``services`` has sent one of
        ``kind``."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            spans = [s for s in self.spans if s["trace_id"] == trace_id]
            if services <= {s["service"] for s in spans if s["kind"] == kind}:
                return spans
            time.sleep(0.1)
        raise AssertionError(f"no spans of {services} in trace {trace_id}: {self.spans}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.mark.slow
def test_gateway_and_vat_service_export_one_trace_over_otlp(
        suite: Suite, processes: Processes, redis_prefix: str, tmp_path) -> None:
    """The real exporter: gateway and VAT service under gunicorn send their spans of one
    request to a collector, in the caller's trace, the VAT's server span a child of the
    gateway's client span."""
    receiver = OtlpReceiver()
    otel = {"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    try:
        vat = processes.start(gunicorn_argv("services.vat.wsgi:app", threads=4),
                              env={**suite.env, **otel, "TRACE30_REDIS_PREFIX": redis_prefix})
        gateway = processes.start(gunicorn_argv("services.gateway.wsgi:app", threads=4), env={
            **otel, "TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "TRACE30_REDIS_URL": REDIS_URL, "TRACE30_REDIS_PREFIX": redis_prefix,
            "TRACE30_DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3",
            "TRACE30_GATEWAY_VAT_URL": vat, "TRACE30_GATEWAY_REGISTRY_URL": suite.urls["registry"],
            "TRACE30_GATEWAY_PAYMENT_URL": suite.urls["payment"],
            "TRACE30_GATEWAY_API_KEYS": api_keys()})
        resp = requests.post(gateway + "/v1/verifications", json=README_TRADER, headers=HEADERS,
                             timeout=30)
        assert resp.status_code == 200, resp.text
        spans = receiver.wait_for({"trace30-gateway", "trace30-vat"})
    finally:
        receiver.close()
    by_id = {s["span_id"]: s for s in spans}
    vat_server = next(s for s in spans if s["service"] == "trace30-vat" and s["kind"] == SERVER)
    gateway_server = next(s for s in spans if s["service"] == "trace30-gateway"
                          and s["kind"] == SERVER)
    assert gateway_server["parent_id"] == PARENT_ID
    caller = by_id[vat_server["parent_id"]]  # the gateway's client span of the call
    assert caller["service"] == "trace30-gateway" and caller["kind"] == CLIENT
    assert caller["parent_id"] == gateway_server["span_id"]
    assert "/healthz" not in {s["name"] for s in spans}


def test_an_endpoint_that_is_no_url_stops_start_up_naming_it() -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match=r"^OTEL_EXPORTER_OTLP_ENDPOINT is not valid"):
        load({"OTEL_EXPORTER_OTLP_ENDPOINT": "otel-collector:4318"})
