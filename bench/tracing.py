"""What the request context and tracing cost, against baselines measured in the same run.

(a) A request that fans out three tasks to a thread pool (as the gateway does), through the
    Flask test client: a bare Flask app with ``pool.submit`` (baseline), a trace30 app with
    tracing off (request id and trace in context variables, ``context.submit``), and the same
    app with OpenTelemetry on (spans to the SDK's in-memory exporter, exported synchronously:
    the dearest way). Target: off / bare <= 1.5 (the whole of shared/'s request handling, not
    only tracing, is in "off").
(b) One task through a thread pool: ``context.submit`` against ``pool.submit``.

Run: ``.venv/bin/python bench/tracing.py`` (no Redis needed: the sandbox's embedded store).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from flask import Flask

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shared import context, tracing  # noqa: E402
from shared.factory import create_base_app  # noqa: E402

REQUESTS = 2000
TASKS = 20000


def fan_out_route(app: Flask, pool: Executor, submit: Callable[..., Any]) -> None:
    @app.get("/fan-out")
    def fan_out() -> dict[str, int]:
        futures = [submit(pool, pow, 2, n) for n in range(3)]
        return {"sum": sum(f.result() for f in futures)}


def per_request_us(app: Flask) -> float:
    client = app.test_client()
    for _ in range(100):  # warm up
        client.get("/fan-out")
    started = time.perf_counter()
    for _ in range(REQUESTS):
        assert client.get("/fan-out").status_code == 200
    return (time.perf_counter() - started) / REQUESTS * 1e6


def plain_submit(pool: Executor, fn: Callable[..., Any], *args: Any) -> Any:
    return pool.submit(fn, *args)


def trace30_app(pool: Executor, **config: Any) -> Flask:
    app, _ = create_base_app(__name__, "bench", {"SANDBOX": True, "LOG_LEVEL": "WARNING",
                                                 **config}, title="bench", internal_auth=False)
    fan_out_route(app, pool, context.submit)
    return app


def main() -> None:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    with ThreadPoolExecutor(4) as pool:
        bare = Flask("bare")
        fan_out_route(bare, pool, plain_submit)
        bare_us = per_request_us(bare)
        off_us = per_request_us(trace30_app(pool))
        exporter = InMemorySpanExporter()
        on_us = per_request_us(trace30_app(pool, OTEL_SPAN_EXPORTER=exporter))
        spans = len(exporter.get_finished_spans())
        tracing.shutdown()

        def tasks(submit: Callable[..., Any]) -> float:
            started = time.perf_counter()
            for f in [submit(pool, pow, 2, 8) for _ in range(TASKS)]:
                f.result()
            return (time.perf_counter() - started) / TASKS * 1e6

        tasks(plain_submit)  # warm up
        with context.bound("bench", context.TraceParent.new()):
            plain_task_us, context_task_us = tasks(plain_submit), tasks(context.submit)

    print(f"(a) request with a 3-task fan-out, {REQUESTS} requests through the test client:")
    print(f"    bare Flask + pool.submit (baseline): {bare_us:8.1f} us/request")
    print(f"    trace30, tracing off:               {off_us:8.1f} us/request  "
          f"ratio {off_us / bare_us:.2f} (target <= 1.5)")
    print(f"    trace30, OpenTelemetry on:          {on_us:8.1f} us/request  "
          f"ratio {on_us / off_us:.2f} against off ({spans} spans recorded)")
    print(f"(b) one pool task, {TASKS} tasks: pool.submit {plain_task_us:.1f} us, "
          f"context.submit {context_task_us:.1f} us, ratio {context_task_us / plain_task_us:.2f}")


if __name__ == "__main__":
    main()
