"""The VAT check logic: local first, cache, retries, breaker, limits; with a fake VIES."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from services.vat.cache import VatCache
from services.vat.checks import CheckRequest, Limits, VatChecker
from services.vat.vies import TraderQuery, ViesFault
from shared.breaker import CircuitBreaker
from shared.limits import ConcurrencyLimiter
from shared.outbound import NotSent
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError
from tests.conftest import FakeClock, wait_blocked
from tests.vat.fakes import FakeVies, answer

DE = "DE136695976"
FR = "FR23334175221"


def make_checker(store: Store, vies: FakeVies, *, deadline_s: float = 2.0, cap: int = 4,
                 threshold: int = 3, cooldown_s: float = 30.0,
                 requester: str | None = None,
                 clock: Callable[[], float] = time.time, min_call_s: float = 0.0,
                 abandoned_hold_s: float = 0.0) -> VatChecker:
    return VatChecker(
        vies=vies,
        cache=VatCache(store, 86400, 3600, 7 * 86400, clock=clock),
        limiter=ConcurrencyLimiter(store, "vies", lease_s=deadline_s + 5),
        breaker=CircuitBreaker(store, "vies", threshold, cooldown_s, clock=clock),
        limits=Limits(deadline_s=deadline_s, retry_base_s=0.01, retry_max_s=0.05,
                      default_cap=cap, caps={}, min_call_s=min_call_s,
                      abandoned_hold_s=abandoned_hold_s),
        default_requester=requester,
    )


@pytest.fixture
def vies() -> FakeVies:
    return FakeVies()


def test_local_failure_never_calls_vies(store: Store, vies: FakeVies) -> None:
    result = make_checker(store, vies).check(CheckRequest("DE136695977"))
    assert result["status"] == "invalid"
    assert result["reason"] == "checksum"
    assert result["source"] == "local"
    assert vies.calls == []


def test_valid_answer_then_cache_hit_then_forced_refresh(store: Store, vies: FakeVies) -> None:
    checker = make_checker(store, vies)
    first = checker.check(CheckRequest(DE))
    assert first["status"] == "valid" and first["cached"] is False
    assert first["name"] == "ACME"
    second = checker.check(CheckRequest("de 136 695 976"))
    assert second["cached"] is True
    assert second["checked_at"] == first["checked_at"]
    assert len(vies.calls) == 1
    third = checker.check(CheckRequest(DE, max_age_s=0))
    assert third["cached"] is False
    assert len(vies.calls) == 2


def test_max_age_rejects_older_cached_answer(store: Store, vies: FakeVies,
                                             clock: FakeClock) -> None:
    checker = make_checker(store, vies, clock=clock)
    checker.check(CheckRequest(DE))
    clock.advance(1.1)
    assert checker.check(CheckRequest(DE, max_age_s=1))["cached"] is False
    assert checker.check(CheckRequest(DE, max_age_s=60))["cached"] is True


def test_invalid_answer_is_cached_with_reason_vies(store: Store, vies: FakeVies) -> None:
    vies.script(FR, False)
    checker = make_checker(store, vies)
    result = checker.check(CheckRequest(FR))
    assert result["status"] == "invalid" and result["reason"] == "vies"
    assert checker.check(CheckRequest(FR))["cached"] is True
    assert len(vies.calls) == 1


def test_invalid_input_fault_is_invalid(store: Store, vies: FakeVies) -> None:
    vies.script(FR, ViesFault("INVALID_INPUT"))
    result = make_checker(store, vies).check(CheckRequest(FR))
    assert result["status"] == "invalid"
    assert result["reason"] == "vies"


@pytest.mark.parametrize(
    "error",
    [ViesFault("MS_UNAVAILABLE"), ViesFault("MS_MAX_CONCURRENT_REQ"),
     UpstreamError("slow", Fault.TIMEOUT), UpstreamError("garbage", Fault.BAD_RESPONSE),
     ViesFault("SOMETHING_NEW")],
)
def test_upstream_fault_is_unavailable_and_never_cached(
    store: Store, vies: FakeVies, error: Exception
) -> None:
    vies.script(FR, error)
    checker = make_checker(store, vies, deadline_s=0.3, threshold=100)
    result = checker.check(CheckRequest(FR))
    assert result["status"] == "unavailable"
    assert result["error"]["code"] == error.code
    assert result["error"]["retryable"] is True
    assert result["retry_after_s"] > 0
    assert result["attempts"] >= 2  # retried inside the deadline
    calls = len(vies.calls)
    assert checker.check(CheckRequest(FR))["status"] == "unavailable"
    assert len(vies.calls) > calls  # nothing was cached


def test_transient_fault_retried_then_valid(store: Store, vies: FakeVies) -> None:
    vies.script(FR, ViesFault("MS_MAX_CONCURRENT_REQ"), ViesFault("TIMEOUT"), True)
    result = make_checker(store, vies).check(CheckRequest(FR))
    assert result["status"] == "valid"
    assert result["attempts"] == 3


@pytest.mark.parametrize("code", ["INVALID_REQUESTER_INFO", "VAT_BLOCKED", "IP_BLOCKED"])
def test_blocked_is_unavailable_not_retryable(
    store: Store, vies: FakeVies, code: str, caplog: pytest.LogCaptureFixture
) -> None:
    vies.script(FR, ViesFault(code))
    result = make_checker(store, vies).check(CheckRequest(FR))
    assert result["status"] == "unavailable"
    assert result["error"] == {"code": code, "retryable": False, "message": f"VIES fault {code}"}
    assert len(vies.calls) == 1
    assert any(r.levelname == "ERROR" and "attention" in r.getMessage() for r in caplog.records)


def test_deadline_bounds_the_whole_check(store: Store) -> None:
    vies = FakeVies(delay_s=0.1)
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    started = time.monotonic()
    result = make_checker(store, vies, deadline_s=0.5, threshold=100).check(CheckRequest(FR))
    assert time.monotonic() - started < 0.9
    assert result["status"] == "unavailable"
    # the read timeout handed to VIES shrinks with what is left of the deadline
    assert all(c["timeout_s"] <= 0.5 for c in vies.calls)
    assert vies.calls[-1]["timeout_s"] < vies.calls[0]["timeout_s"]


def test_breaker_opens_and_answers_at_once(store: Store, vies: FakeVies) -> None:
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=3, cooldown_s=30)
    for _ in range(3):
        first = checker.check(CheckRequest(FR))
        assert first["error"]["code"] == "MS_UNAVAILABLE"
    calls = len(vies.calls)
    started = time.monotonic()
    second = checker.check(CheckRequest(FR))
    assert time.monotonic() - started < 0.1
    assert second["status"] == "unavailable"
    assert second["error"]["code"] == "CIRCUIT_OPEN"
    assert "MS_UNAVAILABLE" in second["error"]["message"]
    assert 0 < second["retry_after_s"] <= 30
    assert len(vies.calls) == calls
    # other member states are not affected
    assert checker.check(CheckRequest(DE))["status"] == "valid"


@pytest.mark.parametrize("threshold", [2, 3, 5])
def test_one_check_is_one_failure_however_many_attempts(store: Store, vies: FakeVies,
                                                        threshold: int) -> None:
    """Finding 2 of issue 9: the retries of one check counted as consecutive failures, so one
    request could open a member state's circuit. Now N checks open it, one check never."""
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=threshold)
    for n in range(1, threshold):
        result = checker.check(CheckRequest(FR))
        assert result["attempts"] > threshold  # every attempt failed, more than N of them
        assert checker.breaker.state("FR") == "closed", f"opened by check {n}"
        assert int(store.client.hget(checker.breaker._key("FR"), "failures")) == n
    checker.check(CheckRequest(FR))
    assert checker.breaker.state("FR") == "open"


def test_a_success_after_failed_attempts_is_one_success(store: Store, vies: FakeVies) -> None:
    vies.script(FR, ViesFault("MS_UNAVAILABLE"), ViesFault("MS_UNAVAILABLE"), True)
    checker = make_checker(store, vies, threshold=2)
    checker.breaker.record_failure("FR", "MS_UNAVAILABLE")  # an earlier failed check
    result = checker.check(CheckRequest(FR))
    assert result["status"] == "valid" and result["attempts"] == 3
    assert checker.breaker.state("FR") == "closed"
    assert not store.client.exists(checker.breaker._key("FR"))  # the count starts again


def test_a_check_stops_retrying_once_others_opened_the_circuit(store: Store,
                                                               vies: FakeVies) -> None:
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=2.0, threshold=2)
    original = vies.check

    def failing_elsewhere_too(**kw: object) -> object:
        checker.breaker.record_failure("FR", "MS_UNAVAILABLE")  # another check, elsewhere
        return original(**kw)

    vies.check = failing_elsewhere_too  # type: ignore[method-assign]
    result = checker.check(CheckRequest(FR))
    # its own first failure is not counted yet; the second check elsewhere opens the circuit
    assert result["attempts"] == 2 and result["error"]["code"] == "MS_UNAVAILABLE"
    assert checker.breaker.state("FR") == "open"


def test_breaker_probe_closes_after_cooldown(store: Store, vies: FakeVies,
                                             clock: FakeClock) -> None:
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=2, cooldown_s=30, clock=clock)
    checker.breaker.record_failure("FR", "MS_UNAVAILABLE")  # an earlier failed check
    assert checker.check(CheckRequest(FR))["status"] == "unavailable"
    assert checker.breaker.state("FR") == "open"
    vies.script(FR, True)
    clock.advance(31)
    assert checker.breaker.state("FR") == "half_open"
    assert checker.check(CheckRequest(FR))["status"] == "valid"
    assert checker.breaker.state("FR") == "closed"


def test_a_failed_probe_asks_once_and_reopens(store: Store, vies: FakeVies,
                                              clock: FakeClock) -> None:
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=2, cooldown_s=30, clock=clock)
    checker.check(CheckRequest(FR))
    assert checker.breaker.state("FR") == "closed"
    checker.check(CheckRequest(FR))
    assert checker.breaker.state("FR") == "open"
    clock.advance(31)
    calls = len(vies.calls)
    assert checker.check(CheckRequest(FR))["attempts"] == 1
    assert len(vies.calls) == calls + 1
    assert checker.breaker.state("FR") == "open"


def test_a_probe_that_cannot_be_built_lets_the_next_check_probe(
        store: Store, vies: FakeVies, clock: FakeClock) -> None:
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=1, cooldown_s=30, clock=clock)
    checker.check(CheckRequest(FR))
    clock.advance(31)
    assert checker.breaker.state("FR") == "half_open"
    vies.script(FR, NotSent("cannot build"))
    with pytest.raises(NotSent):
        checker.check(CheckRequest(FR))
    vies.script(FR, True)
    assert checker.check(CheckRequest(FR))["status"] == "valid"  # the probe was given back
    assert checker.breaker.state("FR") == "closed"


def test_throttle_faults_do_not_open_the_breaker(store: Store, vies: FakeVies) -> None:
    vies.script(FR, ViesFault("MS_MAX_CONCURRENT_REQ"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=2)
    checker.check(CheckRequest(FR))
    assert checker.breaker.state("FR") == "closed"


def test_stale_valid_served_only_when_allowed(store: Store, vies: FakeVies) -> None:
    vies.script(FR, True, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.2, threshold=100)
    assert checker.check(CheckRequest(FR))["status"] == "valid"
    strict = checker.check(CheckRequest(FR, max_age_s=0))
    assert strict["status"] == "unavailable"
    stale = checker.check(CheckRequest(FR, max_age_s=0, allow_stale=True))
    assert stale["status"] == "valid"
    assert stale["stale"] is True and stale["cached"] is True
    assert stale["error"]["code"] == "MS_UNAVAILABLE"


def test_concurrency_cap_holds_across_threads(store: Store) -> None:
    vies = FakeVies(delay_s=0.05)
    checker = make_checker(store, vies, cap=2, deadline_s=5)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda _: checker.check(CheckRequest(DE, max_age_s=0)), range(12)))
    assert all(r["status"] == "valid" for r in results)
    assert vies.max_in_flight == 2


def test_a_batch_check_yields_the_slot_to_an_interactive_one(store: Store) -> None:
    """Re-verification (``priority: batch``) waits while a signup's check waits."""
    vies = FakeVies(delay_s=0.05)
    checker = make_checker(store, vies, cap=1, deadline_s=5)
    checker.limiter.poll_s = 5  # waiters stay blocked on Redis until a release wakes them
    held = checker.limiter.try_acquire("DE", 1)
    assert held
    blocked = int(store.client.info("clients")["blocked_clients"])
    finished: list[str] = []

    def run(priority: str, number: str) -> None:
        checker.check(CheckRequest(number, max_age_s=0, priority=priority))
        finished.append(priority)

    with ThreadPoolExecutor(2) as pool:
        batch = pool.submit(run, "batch", DE)
        wait_blocked(store, blocked + 1)  # the batch check waits first
        signup = pool.submit(run, "interactive", "DE129273398")
        wait_blocked(store, blocked + 2)
        checker.limiter.release("DE", held)
        batch.result(5)
        signup.result(5)
    assert finished == ["interactive", "batch"]
    assert [c["number"] for c in vies.calls] == ["129273398", "136695976"]


def test_no_slot_in_time_is_unavailable(store: Store, vies: FakeVies) -> None:
    checker = make_checker(store, vies, cap=1, deadline_s=0.2)
    token = checker.limiter.try_acquire("DE", 1)
    assert token
    result = checker.check(CheckRequest(DE))
    assert result["status"] == "unavailable"
    assert result["error"]["code"] == "CONCURRENCY_LIMIT"
    assert vies.calls == []


def test_requester_and_trader_go_to_vies_and_key_the_cache(store: Store, vies: FakeVies) -> None:
    checker = make_checker(store, vies, requester="NL004495445B01")
    trader = TraderQuery(name="ACME", city="Berlin")
    checker.check(CheckRequest(DE, trader=trader))
    assert vies.calls[0]["requester"] == ("NL", "004495445B01")
    assert vies.calls[0]["trader"] == trader
    checker.check(CheckRequest(DE, trader=TraderQuery(name="Other")))
    assert len(vies.calls) == 2  # other trader details: another question, another answer


def test_cache_keys_hold_no_vat_number(store: Store, vies: FakeVies) -> None:
    make_checker(store, vies).check(CheckRequest(DE))
    keys = list(store.client.scan_iter(match=store.prefix + "*"))
    assert keys
    assert not any("136695976" in k for k in keys)


def test_answer_fields_from_vies(store: Store, vies: FakeVies) -> None:
    vies.script(DE, answer("DE", "136695976", name=None, address=None))
    result = make_checker(store, vies).check(CheckRequest(DE))
    assert result["status"] == "valid"
    assert result["name"] is None and result["address"] is None
    assert result["request_date"] == "2026-11-28"


def test_slot_of_an_abandoned_call_stays_taken(store: Store) -> None:
    """A call we gave up on still counts at VIES: its slot is held, then frees itself."""
    vies = FakeVies()
    vies.script(FR, UpstreamError("slow", Fault.TIMEOUT), True)
    checker = make_checker(store, vies, cap=1, deadline_s=0.3, abandoned_hold_s=0.5)
    result = checker.check(CheckRequest(FR))
    assert result["status"] == "unavailable"
    assert result["error"]["code"] == "UPSTREAM_TIMEOUT"
    assert len(vies.calls) == 1  # the held slot kept the retry from overrunning the cap
    assert checker.limiter.in_flight("FR") == 1
    # The hold is a lease timed by the Redis server (shared by every process): a real wait.
    time.sleep(0.55)
    assert checker.check(CheckRequest(FR))["status"] == "valid"


def test_no_call_is_started_without_time_for_it(store: Store) -> None:
    vies = FakeVies()
    vies.script(FR, ViesFault("MS_UNAVAILABLE"))
    checker = make_checker(store, vies, deadline_s=0.3, threshold=100, min_call_s=0.5)
    result = checker.check(CheckRequest(FR))
    assert result["status"] == "unavailable"
    assert result["error"]["code"] == "DEADLINE_EXCEEDED"
    assert vies.calls == []
