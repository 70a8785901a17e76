"""The request id and trace context: W3C ``traceparent`` read strictly, carried into thread
pools and background work, written on every JSON log line, forwarded to the services."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace

import pytest
from flask import Flask

from services.gateway.upstreams import ServiceClient
from shared import context, tracing
from shared.context import TraceParent
from shared.factory import create_base_app
from shared.logs import JsonFormatter
from tests.gateway.fake_service import FakeService

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_ID}-01"
log = logging.getLogger("tests.context")


@pytest.mark.parametrize("header", [
    TRACEPARENT,
    f"00-{TRACE_ID}-{PARENT_ID}-00",
    f"  00-{TRACE_ID}-{PARENT_ID}-01\t",  # optional white space around the value
    f"cc-{TRACE_ID}-{PARENT_ID}-01-what-the-future-adds",  # a later version, read as 00
])
def test_a_valid_traceparent_is_read(header: str) -> None:
    tp = TraceParent.parse(header)
    assert tp is not None and (tp.trace_id, tp.span_id) == (TRACE_ID, PARENT_ID)


@pytest.mark.parametrize("header", [
    "", "garbage", TRACEPARENT.upper(),
    f"00-{TRACE_ID}-{PARENT_ID}-01-extra",  # version 00 has exactly four fields
    f"ff-{TRACE_ID}-{PARENT_ID}-01",  # the forbidden version
    f"00-{'0' * 32}-{PARENT_ID}-01", f"00-{TRACE_ID}-{'0' * 16}-01",  # all-zero ids
    f"00-{TRACE_ID[:-1]}-{PARENT_ID}-01", f"00-{TRACE_ID}-{PARENT_ID}0-01",  # lengths
    f"00-{TRACE_ID}-{PARENT_ID}-1", f"00_{TRACE_ID}_{PARENT_ID}_01",
    f"cc-{TRACE_ID}-{PARENT_ID}-01x",  # a later version still needs '-' after the flags
    "00-" + "g" * 32 + f"-{PARENT_ID}-01", TRACEPARENT + "-" + "x" * 600,
])
def test_a_malformed_traceparent_is_refused(header: str) -> None:
    assert TraceParent.parse(header) is None


def test_only_the_sampled_flag_is_passed_on() -> None:
    tp = TraceParent.parse(f"00-{TRACE_ID}-{PARENT_ID}-ff".replace("00-", "01-", 1))
    assert tp is not None and tp.flags == 1
    assert tp.child().header().endswith("-01")


def test_submit_runs_the_task_in_the_callers_context() -> None:
    """A pool thread does not see the caller's context variables unless submitted through
    ``context.submit``; then it does, and the pool thread keeps none of it afterwards."""
    trace = TraceParent.new()
    with ThreadPoolExecutor(1) as pool:
        pool.submit(lambda: None).result()  # the thread exists before the context is set
        with context.bound("rid-pool", trace):
            plain = pool.submit(lambda: (context.request_id(), context.trace())).result()
            carried = context.submit(pool, lambda: (context.request_id(),
                                                    context.trace())).result()
        after = pool.submit(context.request_id).result()
    assert plain == (None, None)
    assert carried == ("rid-pool", trace)
    assert after is None


def test_bound_restores_what_was_there() -> None:
    with context.bound("outer"):
        with context.bound("inner", TraceParent.new()):
            assert context.request_id() == "inner"
        assert context.request_id() == "outer" and context.trace() is None
    assert context.request_id() is None


def test_background_work_gets_its_own_id_and_trace_or_continues_the_parent() -> None:
    with tracing.background("item", request_id="verif-req-1") as own:
        assert context.request_id() == "verif-req-1"
        assert context.trace() == own
    with tracing.background("item", request_id=None,
                            parent=TraceParent.parse(TRACEPARENT)) as child:
        rid = context.request_id()
    assert rid and len(rid) == 32
    assert child.trace_id == TRACE_ID and child.span_id != PARENT_ID
    assert context.request_id() is None and context.trace() is None


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    """What the JSON log handler writes while the test runs (root logger, INFO)."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("demo"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield out
    root.removeHandler(handler)
    root.setLevel(level)


def parsed(out: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


@pytest.fixture
def app(store) -> Flask:
    app, _ = create_base_app(__name__, "demo", {"SANDBOX": True, "REDIS_STORE": store},
                             title="demo")
    pool = ThreadPoolExecutor(2)

    @app.get("/fan-out")
    def fan_out():  # noqa: ANN202
        # a pool thread, as the gateway's fan-out: its line carries the request's id and trace
        context.submit(pool, log.info, "in the pool").result()
        return {"ok": True}

    return app


def test_a_request_logs_its_id_and_trace_everywhere_it_goes(app: Flask,
                                                            lines: io.StringIO) -> None:
    resp = app.test_client().get("/fan-out", headers={"X-Request-ID": "rid-42",
                                                      "traceparent": TRACEPARENT})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "rid-42"
    records = parsed(lines)
    pool_line = next(r for r in records if r["msg"] == "in the pool")
    access = next(r for r in records if r["logger"] == "trace30.access")
    for line in (pool_line, access):
        assert line["request_id"] == "rid-42"
        assert line["trace_id"] == TRACE_ID
        # this service's own span in the caller's trace
        assert line["span_id"] != PARENT_ID and len(line["span_id"]) == 16
    assert context.request_id() is None  # nothing left behind for the thread's next request
    log.info("after the request")
    assert "request_id" not in parsed(lines)[-1] and "trace_id" not in parsed(lines)[-1]


@pytest.mark.parametrize("header", ["garbage", f"00-{'0' * 32}-{PARENT_ID}-01",
                                    TRACEPARENT.upper(), "00-" + "x" * 5000])
def test_a_bad_traceparent_starts_a_new_trace_never_an_error(
        app: Flask, lines: io.StringIO, header: str) -> None:
    resp = app.test_client().get("/fan-out", headers={"traceparent": header})
    assert resp.status_code == 200
    ids = {r["trace_id"] for r in parsed(lines) if "trace_id" in r}
    assert len(ids) == 1 and TRACE_ID not in ids and "0" * 32 not in ids


def test_requests_do_not_share_a_trace(app: Flask, lines: io.StringIO) -> None:
    client = app.test_client()
    first = client.get("/fan-out").headers["X-Request-ID"]
    second = client.get("/fan-out").headers["X-Request-ID"]
    by_request = {r["request_id"]: r["trace_id"] for r in parsed(lines)
                  if r["logger"] == "trace30.access"}
    assert first != second and by_request[first] != by_request[second]


def test_a_problem_names_the_request_id(app: Flask) -> None:
    resp = app.test_client().get("/nowhere", headers={"X-Request-ID": "rid-404"})
    assert resp.status_code == 404 and resp.get_json()["request_id"] == "rid-404"


def test_threads_of_one_server_keep_requests_apart(app: Flask, lines: io.StringIO) -> None:
    """Requests at once on several threads: each line carries its own request's id."""
    barrier = threading.Barrier(4)

    def one(n: int) -> str:
        barrier.wait()
        return str(app.test_client().get("/fan-out",
                                         headers={"X-Request-ID": f"rid-{n}"}).status_code)

    with ThreadPoolExecutor(4) as pool:
        assert list(pool.map(one, range(4))) == ["200"] * 4
    pooled = sorted(r["request_id"] for r in parsed(lines) if r["msg"] == "in the pool")
    assert pooled == [f"rid-{n}" for n in range(4)]


def test_the_gateway_forwards_the_request_id_and_its_trace() -> None:
    with FakeService() as service:
        client = ServiceClient("vat", service.url, token="t", connect_timeout_s=0.5,
                               read_timeout_s=1.0)
        own = TraceParent.parse(TRACEPARENT)
        assert own is not None
        with context.bound("rid-fwd", own):
            client.call({"vat_number": "DE100"}, deadline=time.monotonic() + 5)
        client.call({"vat_number": "DE100"}, deadline=time.monotonic() + 5)
    sent = service.received[0].headers
    assert sent["X-Request-ID"] == "rid-fwd"
    assert sent["traceparent"] == TRACEPARENT  # this hop's span is the next one's parent
    assert "traceparent" not in service.received[1].headers  # nothing to forward


def test_the_sweeper_runs_a_verification_again_with_the_id_that_submitted_it() -> None:
    from services.gateway.verifications import RetryLoop

    seen: list[tuple[str | None, TraceParent | None]] = []

    class Verifier:
        def retry(self, record: object) -> None:
            seen.append((context.request_id(), context.trace()))

    record = SimpleNamespace(id="v1", state="pending", request_id="rid-submitted")
    assert RetryLoop(Verifier())._run_one(record)
    (rid, trace), = seen
    assert rid == "rid-submitted" and trace is not None
    assert context.request_id() is None  # the sweeper's thread keeps none of it


def test_each_webhook_delivery_is_logged_under_its_delivery_id() -> None:
    from services.gateway.webhooks import WebhookSender

    due = [SimpleNamespace(id="delivery-1"), SimpleNamespace(id="delivery-2")]
    seen: list[str | None] = []

    class Outbox:
        def claim_due_webhooks(self, *_args: object) -> list[object]:
            return [due.pop(0)] if due else []

    class Sender(WebhookSender):
        def attempt(self, delivery: object) -> bool:
            seen.append(context.request_id())
            return True

    sender = Sender(Outbox(), lambda _client: None)
    assert sender.deliver_due() == 2
    sender.close()
    assert seen == ["delivery-1", "delivery-2"]


def test_a_job_is_queued_with_the_runs_id_and_trace() -> None:
    from trace30.jobs import job_meta

    trace = TraceParent.parse(TRACEPARENT)
    with context.bound("rid-run", trace):
        assert job_meta() == {"request_id": "rid-run", "traceparent": TRACEPARENT}
    assert job_meta() == {}
