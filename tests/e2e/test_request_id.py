"""One request id across the suite's real processes: a client's request through the gateway
to the VAT service, and a ``trace30 reverify`` run through an RQ worker to the VAT service,
found by grepping their JSON log lines."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from tests.conftest import INTERNAL_TOKEN, REDIS_URL, ROOT, Processes, Suite, gunicorn_argv
from tests.e2e.test_suite import README_TRADER
from tests.gateway.conftest import API_KEY, api_keys
from tests.shared.test_tracing import CLIENT, CONSUMER, SERVER, OtlpReceiver
from trace30.keys import job_key_pattern

pytestmark = pytest.mark.slow  # the suite as real processes

REQUEST_ID = "ticket-4711"
TRACE_ID = "5c1c63257de34c67b3f44f2d5fb26d2f"
TRACEPARENT = f"00-{TRACE_ID}-0123456789abcdef-01"


def json_lines(text: str, request_id: str) -> list[dict[str, Any]]:
    """The JSON log lines of ``text`` (a process's output) that name ``request_id``."""
    found = []
    for line in text.splitlines():
        if line.startswith("{") and request_id in line:
            record = json.loads(line)
            if record.get("request_id") == request_id:
                found.append(record)
    return found


@pytest.fixture(params=["plain", "opentelemetry"])
def collector(request: pytest.FixtureRequest) -> Iterator[OtlpReceiver | None]:
    """None (tracing off: trace30's own traceparent), or a collector every process sends its
    spans to (tracing on: OpenTelemetry's spans)."""
    if request.param == "plain":
        yield None
        return
    receiver = OtlpReceiver()
    yield receiver
    receiver.close()


def test_one_request_id_across_gateway_vat_service_and_a_batch_job(
        suite: Suite, processes: Processes, redis_prefix: str, tmp_path: Path,
        collector: OtlpReceiver | None) -> None:
    suite.reset()
    common = {"TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
              "TRACE30_REDIS_URL": REDIS_URL, "TRACE30_REDIS_PREFIX": redis_prefix,
              "TRACE30_LOG_LEVEL": "INFO"}
    if collector is not None:
        common |= {"OTEL_EXPORTER_OTLP_ENDPOINT": collector.url, "OTEL_BSP_SCHEDULE_DELAY": "100"}
    vat = processes.start(gunicorn_argv("services.vat.wsgi:app", threads=4),
                          env={**suite.env, **common})
    env = {**common, "TRACE30_DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3",
           "TRACE30_GATEWAY_VAT_URL": vat, "TRACE30_GATEWAY_REGISTRY_URL": suite.urls["registry"],
           "TRACE30_GATEWAY_PAYMENT_URL": suite.urls["payment"],
           "TRACE30_GATEWAY_API_KEYS": api_keys(), "TRACE30_GATEWAY_DEADLINE_S": "6"}
    gateway = processes.start(gunicorn_argv("services.gateway.wsgi:app", threads=4), env=env)
    vat_proc, gateway_proc = processes.procs

    # 1. A client's request, with its id and trace.
    resp = requests.post(gateway + "/v1/verifications", json=README_TRADER, timeout=30,
                         headers={"Authorization": f"Bearer {API_KEY}", "Prefer": "wait=20",
                                  "X-Request-ID": REQUEST_ID, "traceparent": TRACEPARENT})
    assert resp.status_code == 200, resp.text
    assert resp.headers["X-Request-ID"] == REQUEST_ID

    # 2. A batch run tagged with the same id, worked by an RQ worker process.
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
    worker_log = (tmp_path / "worker.log").open("w+")
    worker = subprocess.Popen([sys.executable, "-m", "trace30.cli", "worker"], cwd=ROOT,
                              env=full_env, stdout=worker_log, stderr=subprocess.STDOUT)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "trace30.cli", "reverify", "--all", "--request-id",
             REQUEST_ID, "--run-id", f"rid-{redis_prefix.split(':')[1]}", "--timeout", "60",
             "--report-dir", str(tmp_path)],
            cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=120)
        assert run.returncode == 0, run.stderr
        assert '"finished": 1' in run.stdout, run.stdout
    finally:
        worker.terminate()
        worker.wait(15)
        _drop_jobs(redis_prefix)
    match = re.search(r"request id (\S+), trace ([0-9a-f]{32})", run.stderr)
    assert match is not None and match.group(1) == REQUEST_ID, run.stderr
    batch_trace = match.group(2)
    worker_log.seek(0)
    # (each line is written before the answer or the job's result it belongs to)
    outputs = {"gateway": processes.output(gateway_proc), "vat": processes.output(vat_proc),
               "worker": worker_log.read()}
    worker_log.close()
    lines = {name: json_lines(text, REQUEST_ID) for name, text in outputs.items()}

    # The gateway: the access line, and the settling line written on its pool thread.
    gw = lines["gateway"]
    assert {"request", "verification settled"} <= {r["msg"] for r in gw}, outputs["gateway"]
    assert {r["trace_id"] for r in gw} == {TRACE_ID}
    # The job: the re-verification and its settling, in the run's trace.
    job = lines["worker"]
    assert {"re-verification", "verification settled"} <= {r["msg"] for r in job}, \
        outputs["worker"]
    assert {r["trace_id"] for r in job} == {batch_trace}
    # The VAT service: the gateway's call and the job's, each in its trace.
    calls = [r for r in lines["vat"] if r["msg"] == "request" and r["path"] == "/v1/vat/check"]
    assert {r["trace_id"] for r in calls} == {TRACE_ID, batch_trace}, outputs["vat"]
    assert {r["service"] for r in (*gw, *job, *calls)} == {"gateway", "worker", "vat"}
    if collector is None:
        return
    # With OpenTelemetry on, the spans tell the same story: the run's span, the job's span
    # under it (from the job's meta), the VAT service's server span under the job's call.
    spans = collector.wait_for({"trace30-vat"}, batch_trace)
    spans = collector.wait_for({"trace30-reverify", "trace30-worker"}, batch_trace,
                               kind=CONSUMER)
    by_id = {s["span_id"]: s for s in spans}
    run_span = next(s for s in spans if s["service"] == "trace30-reverify")
    job_span = next(s for s in spans if s["name"] == "reverify_trader")
    assert job_span["service"] == "trace30-worker" and job_span["parent_id"] == run_span["span_id"]
    vat_server = next(s for s in spans if s["service"] == "trace30-vat" and s["kind"] == SERVER)
    caller = by_id[vat_server["parent_id"]]
    assert caller["service"] == "trace30-worker" and caller["kind"] == CLIENT
    assert {s["span_id"] for s in spans} >= {r["span_id"] for r in job}  # lines name spans
    collector.wait_for({"trace30-gateway", "trace30-vat"}, TRACE_ID)


def _drop_jobs(redis_prefix: str) -> None:
    """Forget the RQ keys of this test's deployment (outside the key prefix)."""
    conn = redis.Redis.from_url(REDIS_URL)
    queue = redis_prefix.replace(":", "-")
    for pattern in (f"rq:*{queue}*", job_key_pattern(redis_prefix)):
        for key in conn.scan_iter(match=pattern, count=1000):
            conn.delete(key)
    conn.close()
