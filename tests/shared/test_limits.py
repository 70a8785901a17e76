"""Redis concurrency caps and rate limits, across threads and processes."""

from __future__ import annotations

import multiprocessing
import threading
import time

import pytest
import redis

from shared.limits import ConcurrencyLimiter, RateLimiter
from shared.redis_client import Store
from tests.conftest import REDIS_URL, wait_blocked


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


@pytest.mark.slow
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
    # Leases are timed by the Redis server's clock (so that hosts with skewed clocks agree):
    # no injected clock can move it, this wait is real.
    time.sleep(0.25)
    assert limiter.try_acquire("FR", 1)


def test_acquire_gives_up_at_deadline(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, "t", lease_s=5)
    assert limiter.try_acquire("IT", 1)
    started = time.monotonic()
    assert limiter.acquire("IT", 1, time.monotonic() + 0.1) is None
    assert 0.09 <= time.monotonic() - started < 0.3


def test_a_release_wakes_a_waiter_at_once(store: Store) -> None:
    """Waiters block on Redis and a release wakes one: no waiting out a poll interval."""
    limiter = ConcurrencyLimiter(store, "t", lease_s=5, poll_s=5)
    token = limiter.try_acquire("DE", 1)
    assert token
    got: list[tuple[str | None, float]] = []

    def wait() -> None:
        got.append((limiter.acquire("DE", 1, time.monotonic() + 3), time.monotonic()))

    blocked = int(store.client.info("clients")["blocked_clients"])
    waiter = threading.Thread(target=wait)
    waiter.start()
    wait_blocked(store, blocked + 1)
    released = time.monotonic()
    limiter.release("DE", token)
    waiter.join(5)
    assert got and got[0][0] is not None
    assert got[0][1] - released < 0.5  # far less than poll_s
    assert limiter.in_flight("DE") == 1


def test_waiters_are_served_first_come_first_served(store: Store) -> None:
    limiter = ConcurrencyLimiter(store, "t", lease_s=5, poll_s=5)
    first = limiter.try_acquire("AT", 1)
    order: list[int] = []
    tokens: dict[int, str] = {}

    def wait(n: int) -> None:
        tokens[n] = limiter.acquire("AT", 1, time.monotonic() + 5)
        order.append(n)

    threads = []
    blocked = int(store.client.info("clients")["blocked_clients"])
    for n in range(3):
        t = threading.Thread(target=wait, args=(n,))
        t.start()
        threads.append(t)
        wait_blocked(store, blocked + n + 1)  # n blocks before n + 1
    limiter.release("AT", first)
    for n in range(3):
        deadline = time.monotonic() + 3
        while len(order) <= n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert order == list(range(n + 1))
        limiter.release("AT", tokens[n])
    for t in threads:
        t.join(5)


def test_an_interactive_caller_goes_before_background_waiters(store: Store) -> None:
    """A signup waits for the next free slot, not behind every batch job of the state."""
    limiter = ConcurrencyLimiter(store, "t", lease_s=5, poll_s=5)
    held = limiter.try_acquire("DE", 1)
    order: list[str] = []
    tokens: dict[str, str] = {}

    def wait(name: str, background: bool) -> None:
        tokens[name] = limiter.acquire("DE", 1, time.monotonic() + 5, background=background)
        order.append(name)

    blocked = int(store.client.info("clients")["blocked_clients"])
    threads = [threading.Thread(target=wait, args=(f"batch{n}", True)) for n in range(3)]
    for t in threads:
        t.start()
    wait_blocked(store, blocked + 3)  # the batch waiters were first
    signup = threading.Thread(target=wait, args=("signup", False))
    signup.start()
    wait_blocked(store, blocked + 4)
    limiter.release("DE", held)
    signup.join(3)
    assert order == ["signup"]
    limiter.release("DE", tokens["signup"])
    for n in range(3):  # then the batch, one slot at a time
        deadline = time.monotonic() + 3
        while len(order) < n + 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert len(order) == n + 2
        limiter.release("DE", tokens[order[-1]])
    for t in threads:
        t.join(3)
    assert sorted(order[1:]) == ["batch0", "batch1", "batch2"]


def test_background_callers_take_free_slots_when_nobody_interactive_waits(
        store: Store) -> None:
    limiter = ConcurrencyLimiter(store, "t", lease_s=5)
    assert limiter.acquire("FI", 2, time.monotonic() + 1, background=True)
    assert limiter.acquire("FI", 2, time.monotonic() + 1, background=True)
    assert limiter.acquire("FI", 2, time.monotonic() + 0.1, background=True) is None


def test_an_interactive_caller_that_gave_up_no_longer_holds_back_the_batch(
        store: Store) -> None:
    limiter = ConcurrencyLimiter(store, "t", lease_s=5, poll_s=0.05)
    held = limiter.try_acquire("DK", 1)
    assert limiter.acquire("DK", 1, time.monotonic() + 0.1) is None  # gave up
    limiter.release("DK", held)
    assert limiter.acquire("DK", 1, time.monotonic() + 0.5, background=True)


def test_a_lapsed_lease_is_found_without_a_release(store: Store) -> None:
    """A holder that died never releases: waiters still find its slot when the lease lapses."""
    limiter = ConcurrencyLimiter(store, "t", lease_s=0.3, poll_s=0.05)
    assert limiter.try_acquire("PL", 1)
    started = time.monotonic()
    assert limiter.acquire("PL", 1, time.monotonic() + 3)
    assert 0.25 <= time.monotonic() - started < 1.5


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


def test_rate_limiter_reserves_turns_for_waiters(store: Store) -> None:
    """Waiters take successive turns at once (one call each to Redis) and sleep until them;
    a turn past the deadline is not taken, so it is left to the next caller."""
    limiter = RateLimiter(store, "t")
    assert limiter.reserve("fr", rate=10, period_s=1, within_s=0) == 0.0
    first = limiter.reserve("fr", rate=10, period_s=1, within_s=1)
    second = limiter.reserve("fr", rate=10, period_s=1, within_s=1)
    assert first is not None and second is not None
    assert 0.05 < first <= 0.1
    assert 0.05 < second - first <= 0.1 + 1e-6
    assert limiter.reserve("fr", rate=10, period_s=1, within_s=0.1) is None  # not taken:
    assert 0.25 < (limiter.reserve("fr", rate=10, period_s=1, within_s=1) or 0) <= 0.3


def test_rate_limiter_waiters_keep_the_rate(store: Store) -> None:
    """Eight threads waiting for turns of 20 a second: each call is spaced from the last."""
    limiter = RateLimiter(store, "t")
    times: list[float] = []
    lock = threading.Lock()

    def call() -> None:
        assert limiter.acquire("cz", rate=20, period_s=1, deadline=time.monotonic() + 5)
        with lock:
            times.append(time.monotonic())

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    times.sort()
    assert times[-1] - times[0] >= 7 * 0.05 - 0.02
