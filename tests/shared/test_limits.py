"""Redis concurrency caps and rate limits, across threads and processes."""

from __future__ import annotations

import multiprocessing
import time

import redis

from shared.limits import ConcurrencyLimiter, RateLimiter
from shared.redis_client import Store
from tests.conftest import REDIS_URL


def _hold_slots(prefix: str, cap: int, rounds: int, hold_s: float, out: multiprocessing.Queue):
    store = Store(redis.Redis.from_url(REDIS_URL, decode_responses=True), prefix)
    limiter = ConcurrencyLimiter(store, "t", lease_s=10)
    peak = 0
    for _ in range(rounds):
        with limiter.slot("DE", cap, time.monotonic() + 10) as ok:
            assert ok
            peak = max(peak, limiter.in_flight("DE"))
            store.client.incr(prefix + "total")
            time.sleep(hold_s)
    out.put(peak)


def test_cap_holds_across_processes(store: Store) -> None:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_hold_slots, args=(store.prefix, 2, 5, 0.03, out))
             for _ in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    peaks = [out.get(timeout=5) for _ in procs]
    assert max(peaks) <= 2
    assert int(store.client.get(store.prefix + "total")) == 20


def test_lease_frees_a_dead_holders_slot(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, "t", lease_s=0.2)
    assert limiter.try_acquire("FR", 1)
    assert limiter.try_acquire("FR", 1) is None
    time.sleep(0.25)
    assert limiter.try_acquire("FR", 1)


def test_acquire_gives_up_at_deadline(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, "t", lease_s=5)
    assert limiter.try_acquire("IT", 1)
    started = time.monotonic()
    assert limiter.acquire("IT", 1, time.monotonic() + 0.1) is None
    assert 0.09 <= time.monotonic() - started < 0.3


def test_rate_limiter_spaces_calls(store: Store) -> None:
    limiter = RateLimiter(store, "t")
    assert limiter.try_acquire("gleif", rate=10, period_s=1) == 0.0
    wait = limiter.try_acquire("gleif", rate=10, period_s=1)
    assert 0.0 < wait <= 0.1
    started = time.monotonic()
    for _ in range(5):
        assert limiter.acquire("gleif", rate=10, period_s=1, deadline=time.monotonic() + 2)
    assert time.monotonic() - started >= 0.35


def test_rate_limiter_burst_and_deadline(store: Store) -> None:
    limiter = RateLimiter(store, "t")
    for _ in range(3):
        assert limiter.try_acquire("ch", rate=1, period_s=10, burst=3) == 0.0
    assert limiter.try_acquire("ch", rate=1, period_s=10, burst=3) > 5
    assert limiter.acquire("ch", 1, 10, deadline=time.monotonic() + 0.1, burst=3) is False
