"""What per-client rate limits and ``Idempotency-Key`` cost a gateway request, on the real Redis.

In-process (Flask's test client, no network but Redis), so that only the hooks are measured:

- ``GET /v1/reasons`` (no upstream, no evidence log) with the rate limiter, against the same app
  with the limiter's hooks taken out (the baseline, measured in the same run);
- ``POST /v1/traders/<unknown>/end`` (a 404 from the evidence log) without a key (baseline),
  with a new key each time (claim + store), and with the same key (replayed from Redis).

    .venv/bin/python bench/client_limits.py [--requests 2000]

Needs Redis on 127.0.0.1:6379 (``TRACE30_BENCH_REDIS_URL``); its keys get a private prefix,
deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable

import redis

from services.gateway import create_app, ratelimits, shutdown

REDIS_URL = os.environ.get("TRACE30_BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
AUTH = {"Authorization": "Bearer trace30-sandbox-key"}


def timed(n: int, call: Callable[[int], int], expected: int) -> float:
    """Median milliseconds of ``call(i)`` over ``n`` calls, each checked for ``expected``."""
    for i in range(min(50, n)):  # warm-up
        call(-1 - i)
    samples = []
    for i in range(n):
        started = time.perf_counter()
        status = call(i)
        samples.append((time.perf_counter() - started) * 1000)
        assert status == expected, f"answered {status}, expected {expected}"
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    n = parser.parse_args().requests
    prefix = f"trace30bench:limits{uuid.uuid4().hex[:8]}:"
    with tempfile.TemporaryDirectory() as tmp:
        config = {"SANDBOX": True, "TESTING": True, "GATEWAY_BACKGROUND": False,
                  "LOG_LEVEL": "ERROR", "REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix,
                  "DATABASE_URL": f"sqlite:///{tmp}/evidence.sqlite3",
                  "GATEWAY_RATE_LIMIT": "1000000/minute"}
        limited = create_app(config)
        bare = create_app(config)
        # the baseline: the same gateway without the limiter's hooks
        hooks = bare.extensions[ratelimits.EXTENSION]
        bare.before_request_funcs[None].remove(hooks._check)
        bare.after_request_funcs[None].remove(hooks._add_headers)
        try:
            lc, bc = limited.test_client(), bare.test_client()
            with_limits = timed(n, lambda i: lc.get("/v1/reasons", headers=AUTH).status_code, 200)
            without = timed(n, lambda i: bc.get("/v1/reasons", headers=AUTH).status_code, 200)

            url = "/v1/traders/no-such-trader/end"
            run = uuid.uuid4().hex[:8]
            no_key = timed(n, lambda i: lc.post(url, json={}, headers=AUTH).status_code, 404)
            new_key = timed(n, lambda i: lc.post(url, json={}, headers={
                **AUTH, "Idempotency-Key": f"{run}-{i}"}).status_code, 404)
            replay = timed(n, lambda i: lc.post(url, json={}, headers={
                **AUTH, "Idempotency-Key": f"{run}-same"}).status_code, 404)
        finally:
            shutdown(limited)
            shutdown(bare)
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=prefix + "*", count=1000))
            if keys:
                client.delete(*keys)
            client.close()
    print(f"requests per case: {n} (median ms per request, in-process, Redis at {REDIS_URL})")
    print(f"GET /v1/reasons  without limiter (baseline) {without:7.3f} ms")
    print(f"GET /v1/reasons  with rate limits           {with_limits:7.3f} ms   "
          f"x{with_limits / without:.2f}  (+{with_limits - without:.3f} ms)")
    print(f"POST .../end     without a key (baseline)   {no_key:7.3f} ms")
    print(f"POST .../end     a new Idempotency-Key      {new_key:7.3f} ms   "
          f"x{new_key / no_key:.2f}  (+{new_key - no_key:.3f} ms)")
    print(f"POST .../end     the same key, replayed     {replay:7.3f} ms   "
          f"x{replay / no_key:.2f}")


if __name__ == "__main__":
    main()
