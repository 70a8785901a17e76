"""What the metrics cost (shared/metrics.py): a request and a guarded upstream check, with the
metrics and without them, measured in the same run; in one process (the registry in memory) and
in prometheus-client's multiprocess mode (values written to mmapped files, as under gunicorn).

    python bench/metrics_overhead.py

Prints microseconds per request and per check, and the ratio with metrics / without (target:
under 1.1 on a request). Without: the app's two metrics hooks removed, the upstream functions of
shared.metrics replaced by no-ops; everything else the same.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

REQUESTS = 500
CHECKS = 5000
ROUNDS = 15


def _app() -> Any:
    from services.vat import create_app
    return create_app({"SANDBOX": True, "LOG_LEVEL": "ERROR"})


def _without_hooks(app: Any) -> Any:
    from shared import metrics
    app.before_request_funcs[None].remove(metrics._start_timer)
    app.after_request_funcs[None].remove(metrics._count)
    return app


def _per_request_us(app: Any) -> float:
    client = app.test_client()
    for _ in range(200):
        client.get("/healthz")
    started = time.perf_counter()
    for _ in range(REQUESTS):
        client.get("/healthz")
    return (time.perf_counter() - started) / REQUESTS * 1e6


def _per_check_us() -> float:
    from shared.upstream import GuardedCall, Retry
    call = GuardedCall(None, Retry(0.0, 0.0, retries=0), name="vies")
    deadline = time.monotonic() + 3600

    def attempt(timeout_s: float, n: int) -> int:
        return n

    started = time.perf_counter()
    for _ in range(CHECKS):
        call.run("DE", deadline, attempt)
    return (time.perf_counter() - started) / CHECKS * 1e6


def measure() -> dict[str, float]:
    """Both variants, alternated over many short rounds; the fastest round of each (the least
    disturbed by other processes on a shared machine)."""
    import logging

    from shared import metrics
    logging.disable(logging.CRITICAL)
    with_app, bare_app = _app(), _without_hooks(_app())
    real = (metrics.upstream_check, metrics.upstream_attempt)
    results: dict[str, list[float]] = {k: [] for k in ("req_on", "req_off", "chk_on", "chk_off")}
    for _ in range(ROUNDS):
        results["req_on"].append(_per_request_us(with_app))
        results["req_off"].append(_per_request_us(bare_app))
        results["chk_on"].append(_per_check_us())
        metrics.upstream_check = lambda *a, **k: None  # type: ignore[assignment]
        metrics.upstream_attempt = lambda *a, **k: None  # type: ignore[assignment]
        results["chk_off"].append(_per_check_us())
        metrics.upstream_check, metrics.upstream_attempt = real
    scrape = with_app.test_client()
    started = time.perf_counter()
    for _ in range(50):
        scrape.get("/metrics")
    found = {k: min(v) for k, v in results.items()}
    found["scrape_ms"] = (time.perf_counter() - started) / 50 * 1e3
    return found


def report(mode: str, r: dict[str, float]) -> None:
    print(f"{mode}:")
    print(f"  request (/healthz, Flask test client): {r['req_on']:.1f} us with metrics, "
          f"{r['req_off']:.1f} us without, ratio {r['req_on'] / r['req_off']:.3f} "
          f"(+{r['req_on'] - r['req_off']:.1f} us)")
    print(f"  guarded check (no breaker, no slot):   {r['chk_on']:.1f} us with metrics, "
          f"{r['chk_off']:.1f} us without, ratio {r['chk_on'] / r['chk_off']:.3f} "
          f"(+{r['chk_on'] - r['chk_off']:.1f} us)")
    print(f"  one scrape of /metrics: {r['scrape_ms']:.2f} ms")


def main() -> None:
    if "--child" in sys.argv:
        print(json.dumps(measure()))
        return
    report("one process (in-memory registry)", measure())
    with tempfile.TemporaryDirectory(prefix="trace30-bench-metrics-") as directory:
        env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": directory}
        out = subprocess.run([sys.executable, __file__, "--child"], env=env, check=True,
                             capture_output=True, text=True, timeout=600).stdout
    report("multiprocess mode (as under gunicorn)", json.loads(out.strip().splitlines()[-1]))


if __name__ == "__main__":
    main()
