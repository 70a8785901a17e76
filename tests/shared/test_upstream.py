"""What every outside call shares (``shared.upstream``): the backoff, the pooled session, the
fault catalogue and HTTP fault tables, and the guarded call, with an injected clock and sleep
(no real waits)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
import requests

from services.payment.payee import HTTP_FAULTS as PAYEE_FAULTS
from services.registry.registers.http import HTTP_FAULTS as REGISTER_FAULTS
from services.vat.sources import HTTP_FAULTS as SOURCE_FAULTS
from shared.breaker import CircuitBreaker
from shared.outbound import NotSent
from shared.redis_client import Store
from shared.upstream import (
    Fault,
    GuardedCall,
    HttpFaults,
    Retry,
    UpstreamError,
    backoff_s,
    internal_pool,
    new_session,
    retry_after,
)
from tests.conftest import FakeClock


def test_backoff_grows_with_jitter_up_to_the_maximum() -> None:
    for attempt, ceiling in ((1, 5), (2, 10), (3, 20), (10, 2560), (11, 3600), (500, 3600)):
        waits = [backoff_s(attempt, 5, 3600) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
        assert len(set(waits)) > 1


def test_a_small_maximum_bounds_every_pause() -> None:
    """Past the doubling, the pause stays between half the maximum and the maximum."""
    for attempt in range(1, 20):
        assert all(0.05 <= backoff_s(attempt, 0.1, 0.1) <= 0.1 for _ in range(20))


def test_a_session_is_pooled_without_retries_and_names_its_client() -> None:
    session = new_session("trace30-test/1", 7, accept="application/json")
    try:
        adapter = session.get_adapter("https://example.invalid/")
        assert adapter.max_retries.total == 0
        assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]
        assert session.headers["User-Agent"] == "trace30-test/1"
        assert session.headers["Accept"] == "application/json"
        assert session.get_adapter("http://example.invalid/") is adapter
    finally:
        session.close()


# -- the fault catalogue and the HTTP fault tables -----------------------------------------------


def test_an_internal_pool_ignores_the_environments_proxies(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The gateway's calls to its services never go through an egress proxy (and requests does
    not read the environment again on every call); calls to outside systems do."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    class Ok(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Ok)
    Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nobody listens there
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    try:
        internal = internal_pool(url)
        assert internal.urlopen("GET", "/", timeout=5).status == 204
        internal.close()
        with new_session(None) as outside, pytest.raises(requests.exceptions.ProxyError):
            outside.get(url, timeout=5)
    finally:
        server.shutdown()
        server.server_close()


def test_every_fault_has_its_meaning_and_default_code() -> None:
    assert {f.label for f in Fault} >= {"timeout", "unreachable", "outage", "bad_response",
                                        "throttled", "refused", "rejected", "invalid",
                                        "cannot_check"}
    for fault in Fault:
        error = UpstreamError("x", fault)
        assert (error.retryable, error.outage, error.code) == (fault.retryable, fault.outage,
                                                               fault.code)
    assert [f.name for f in Fault if f.outage] == ["TIMEOUT", "UNREACHABLE", "OUTAGE",
                                                   "BAD_RESPONSE"]
    assert UpstreamError("x", Fault.OUTAGE, code="MS_UNAVAILABLE").code == "MS_UNAVAILABLE"


def _response(status: int, retry_after: str | None = None) -> requests.Response:
    response = requests.Response()
    response.status_code = status
    if retry_after is not None:
        response.headers["Retry-After"] = retry_after
    return response


@pytest.mark.parametrize(("table", "status", "fault", "code", "wait"), [
    # the VAT sources: 5xx and other 4xx name their status; no wait kept on a 5xx
    (SOURCE_FAULTS, 503, Fault.OUTAGE, "UPSTREAM_HTTP_503", None),
    (SOURCE_FAULTS, 418, Fault.OUTAGE, "UPSTREAM_HTTP_418", None),
    (SOURCE_FAULTS, 401, Fault.REFUSED, "UPSTREAM_REFUSED", None),
    (SOURCE_FAULTS, 429, Fault.THROTTLED, "UPSTREAM_THROTTLED", 3.0),
    # the registers: their own codes, a 5xx keeps its Retry-After
    (REGISTER_FAULTS, 500, Fault.OUTAGE, "UPSTREAM_SERVER_ERROR", 3.0),
    (REGISTER_FAULTS, 403, Fault.REFUSED, "UPSTREAM_AUTH", None),
    (REGISTER_FAULTS, 400, Fault.REJECTED, "UPSTREAM_REJECTED", None),
    (REGISTER_FAULTS, 204, Fault.BAD_RESPONSE, "UPSTREAM_BAD_RESPONSE", None),
    # payee verification
    (PAYEE_FAULTS, 502, Fault.OUTAGE, "UPSTREAM_UNREACHABLE", 3.0),
    (PAYEE_FAULTS, 401, Fault.REFUSED, "UPSTREAM_REJECTED", None),
    (PAYEE_FAULTS, 422, Fault.REJECTED, "UPSTREAM_REJECTED", None),
])
def test_each_family_keeps_the_codes_its_api_answers(table: HttpFaults, status: int,
                                                     fault: Fault, code: str,
                                                     wait: float | None) -> None:
    error = table.fault(_response(status, "3"), "X")
    assert (error.fault, error.code, error.retry_after_s) == (fault, code, wait)


def test_retry_after_reads_seconds_and_http_dates() -> None:
    assert retry_after("120") == 120.0
    assert 0 <= (retry_after("Wed, 21 Oct 2015 07:28:00 GMT") or 0) == 0.0  # past: no wait
    assert retry_after("") is None


# -- the guarded call ----------------------------------------------------------------------------


class Clock:
    """``clock`` and ``sleep`` for a guarded call: time moves only when it sleeps (or a call
    takes ``call_s``)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class CountingSlot:
    """A slot that records each turn and the fault it was given back with."""

    def __init__(self, turns: int = 100) -> None:
        self.turns = turns
        self.released: list[UpstreamError | None] = []

    def acquire(self, deadline: float) -> object | None:
        if self.turns == 0:
            return None
        self.turns -= 1
        return object()

    def release(self, token: object, error: UpstreamError | None) -> None:
        self.released.append(error)


class Script:
    """An attempt function answering from a script (errors raised, values returned)."""

    def __init__(self, clock: Clock, *items: object, call_s: float = 0.1) -> None:
        self.items = list(items)
        self.clock = clock
        self.call_s = call_s
        self.timeouts: list[float] = []

    def __call__(self, timeout_s: float, attempt: int) -> object:
        self.timeouts.append(timeout_s)
        self.clock.now += min(self.call_s, timeout_s)
        item = self.items.pop(0) if len(self.items) > 1 else self.items[0]
        if isinstance(item, BaseException):
            raise item
        return item


OUTAGE = UpstreamError("down", Fault.OUTAGE, code="MS_UNAVAILABLE")


@pytest.fixture
def fake_time() -> Clock:
    return Clock()


def guarded(breaker: CircuitBreaker | None, clock: Clock, **retry: Any) -> GuardedCall:
    policy = Retry(**{"base_s": 1.0, "max_s": 4.0, **retry})
    return GuardedCall(breaker, policy, clock=clock, sleep=clock.sleep, rand=lambda: 1.0)


def test_the_breaker_counts_a_check_once_however_many_attempts(store: Store,
                                                               fake_time: Clock) -> None:
    breaker = CircuitBreaker(store, "guard", threshold=2, cooldown_s=30)
    call = guarded(breaker, fake_time, retries=3)
    script = Script(fake_time, OUTAGE)
    run = call.run("k", fake_time.now + 60, script)
    assert run.error is OUTAGE and run.attempts == 4
    assert breaker.state("k") == "closed"  # four failed attempts, one failed check
    assert call.run("k", fake_time.now + 60, Script(fake_time, OUTAGE)).error is OUTAGE
    assert breaker.state("k") == "open"  # the second failed check opens it
    denied = call.run("k", fake_time.now + 60, Script(fake_time, "answer"))
    assert denied.denied is not None and denied.attempts == 0 and not denied.answered


def test_an_answer_after_faults_is_one_success(store: Store, fake_time: Clock) -> None:
    breaker = CircuitBreaker(store, "guard", threshold=1, cooldown_s=30)
    slot = CountingSlot()
    run = guarded(breaker, fake_time).run("k", fake_time.now + 60,
                                          Script(fake_time, OUTAGE, OUTAGE, "answer"), slot=slot)
    assert run.value == "answer" and run.attempts == 3 and run.answered
    assert breaker.state("k") == "closed"
    assert slot.released == [OUTAGE, OUTAGE, None]  # each turn given back, with its fault
    assert fake_time.sleeps == [1.0, 2.0]  # backoff_s doubling (rand pinned to the ceiling)


def test_the_deadline_is_never_passed(fake_time: Clock) -> None:
    started = fake_time.now
    script = Script(fake_time, OUTAGE, call_s=0.5)
    run = guarded(None, fake_time, base_s=0.3, max_s=0.6).run("k", started + 3.0, script)
    assert run.error is OUTAGE and run.attempts >= 3
    assert fake_time.now <= started + 3.0
    assert all(t <= 3.0 for t in script.timeouts)  # each call gets what is left, no more
    assert script.timeouts == sorted(script.timeouts, reverse=True)


def test_no_call_starts_without_time_for_it(fake_time: Clock) -> None:
    script = Script(fake_time, "answer")
    run = guarded(None, fake_time, min_call_s=1.0).run("k", fake_time.now + 0.5, script)
    assert run.error is not None and run.error.code == "DEADLINE_EXCEEDED"
    assert run.error.fault is Fault.TIMEOUT and script.timeouts == []


def test_retry_after_is_never_cut_short(fake_time: Clock) -> None:
    throttled = UpstreamError("slow down", Fault.THROTTLED, retry_after_s=3.0)
    run = guarded(None, fake_time, base_s=0.1, max_s=0.2).run(
        "k", fake_time.now + 10, Script(fake_time, throttled, "answer"))
    assert run.value == "answer"
    assert fake_time.sleeps == [3.0]  # not the 0.1 s backoff, not half of the 3 s asked for


def test_a_retry_after_past_the_deadline_ends_the_check_with_it(fake_time: Clock) -> None:
    throttled = UpstreamError("slow down", Fault.THROTTLED, retry_after_s=30.0)
    script = Script(fake_time, throttled, "answer")
    run = guarded(None, fake_time).run("k", fake_time.now + 10, script)
    assert run.error is throttled and run.error.retry_after_s == 30.0
    assert fake_time.sleeps == [] and len(script.timeouts) == 1


def test_a_throttle_without_a_wait_is_not_retried_where_each_call_costs(
        fake_time: Clock) -> None:
    throttled = UpstreamError("slow down", Fault.THROTTLED)
    script = Script(fake_time, throttled, "answer")
    run = guarded(None, fake_time, throttle_needs_wait=True).run("k", fake_time.now + 10,
                                                                 script)
    assert run.error is throttled and run.attempts == 1


@pytest.mark.parametrize("fault", [Fault.REFUSED, Fault.REJECTED, Fault.CANNOT_CHECK])
def test_a_fault_that_is_not_retryable_is_asked_once_and_not_counted(
        store: Store, fake_time: Clock, fault: Fault) -> None:
    breaker = CircuitBreaker(store, "guard", threshold=1, cooldown_s=30)
    error = UpstreamError("no", fault)
    script = Script(fake_time, error, "answer")
    run = guarded(breaker, fake_time).run("k", fake_time.now + 10, script)
    assert run.error is error and run.attempts == 1
    assert breaker.state("k") == "closed"


def test_not_sent_is_never_retried_nor_counted(store: Store, fake_time: Clock) -> None:
    breaker = CircuitBreaker(store, "guard", threshold=1, cooldown_s=30)
    slot = CountingSlot()
    script = Script(fake_time, NotSent("cannot build", {"name": "bad"}), "answer")
    with pytest.raises(NotSent):
        guarded(breaker, fake_time).run("k", fake_time.now + 10, script, slot=slot)
    assert len(script.timeouts) == 1 and fake_time.sleeps == []
    assert slot.released == [None]  # its turn given back at once
    assert breaker.state("k") == "closed"


def test_a_probe_asks_once(store: Store, fake_time: Clock, clock: FakeClock) -> None:
    breaker = CircuitBreaker(store, "guard", threshold=1, cooldown_s=30, clock=clock)
    breaker.trip("k", "MS_UNAVAILABLE")
    clock.advance(31)  # half-open: the next check is the probe
    script = Script(fake_time, OUTAGE, "answer")
    run = guarded(breaker, fake_time, retries=5).run("k", fake_time.now + 60, script)
    assert run.error is OUTAGE and run.attempts == 1
    assert breaker.state("k") == "open"


def test_no_slot_before_the_deadline_asks_nothing(fake_time: Clock) -> None:
    script = Script(fake_time, "answer")
    run = guarded(None, fake_time).run("k", fake_time.now + 10, script, slot=CountingSlot(0))
    assert run.no_slot and run.attempts == 0 and script.timeouts == []


def test_a_fallback_answers_for_a_fault(fake_time: Clock) -> None:
    seen: list[tuple[str, int]] = []

    def fallback(error: UpstreamError, attempts: int) -> str | None:
        seen.append((error.code, attempts))
        return "from the other front end" if attempts == 2 else None

    run = guarded(None, fake_time).run("k", fake_time.now + 60, Script(fake_time, OUTAGE),
                                       on_fault=fallback)
    assert run.value == "from the other front end" and run.attempts == 2
    assert seen == [("MS_UNAVAILABLE", 1), ("MS_UNAVAILABLE", 2)]


def test_without_the_store_an_optional_breaker_is_skipped(fake_time: Clock) -> None:
    class DownBreaker:
        def allow(self, key: str) -> object:
            raise redis.ConnectionError("down")

    optional = GuardedCall(DownBreaker(), Retry(0, 0, retries=0),  # type: ignore[arg-type]
                           store_optional=True, clock=fake_time, sleep=fake_time.sleep)
    assert optional.run("k", fake_time.now + 1, Script(fake_time, "answer")).value == "answer"
    required = GuardedCall(DownBreaker(), Retry(0, 0, retries=0),  # type: ignore[arg-type]
                           clock=fake_time, sleep=fake_time.sleep)
    with pytest.raises(redis.ConnectionError):
        required.run("k", fake_time.now + 1, Script(fake_time, "answer"))
