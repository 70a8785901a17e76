"""The Redis circuit breaker: opens, answers at once, lets one probe through, closes."""

from __future__ import annotations

import time

from shared.breaker import CircuitBreaker
from shared.redis_client import Store


def test_opens_after_threshold_and_probes_once(store: Store) -> None:
    b = CircuitBreaker(store, "t", threshold=2, cooldown_s=0.2)
    assert b.allow("DE").allowed
    assert b.record_failure("DE", "MS_UNAVAILABLE") is False
    assert b.record_failure("DE", "MS_UNAVAILABLE") is True
    d = b.allow("DE")
    assert not d.allowed and d.code == "MS_UNAVAILABLE" and 0 < d.retry_after_s <= 0.2
    time.sleep(0.25)
    probe = b.allow("DE")
    assert probe.allowed and probe.probe
    assert not b.allow("DE").allowed  # only one probe at a time
    b.record_success("DE")
    assert b.state("DE") == "closed"
    assert b.allow("DE").allowed


def test_failed_probe_reopens(store: Store) -> None:
    b = CircuitBreaker(store, "t", threshold=1, cooldown_s=0.1)
    b.record_failure("FR", "TIMEOUT")
    time.sleep(0.15)
    assert b.allow("FR").probe
    assert b.record_failure("FR", "TIMEOUT") is True
    assert b.state("FR") == "open"


def test_success_resets_the_count(store: Store) -> None:
    b = CircuitBreaker(store, "t", threshold=2, cooldown_s=10)
    b.record_failure("IT", "TIMEOUT")
    b.record_success("IT")
    assert b.record_failure("IT", "TIMEOUT") is False
    assert b.state("IT") == "closed"


def test_an_outcome_records_one_failure_however_many_attempts_failed(store: Store) -> None:
    b = CircuitBreaker(store, "t", threshold=2, cooldown_s=10)
    first = b.outcome("DE", b.allow("DE"))
    for _ in range(5):
        first.failed("MS_UNAVAILABLE")
    assert first.record() is False
    assert first.record() is False  # recorded once only
    assert b.state("DE") == "closed"
    second = b.outcome("DE", b.allow("DE"))
    second.failed("TIMEOUT")
    assert second.record() is True  # the second failed check opens it
    assert b.allow("DE").code == "TIMEOUT" and b.is_open("DE")


def test_an_outcome_with_an_answer_is_one_success(store: Store) -> None:
    b = CircuitBreaker(store, "t", threshold=2, cooldown_s=10)
    b.record_failure("DE", "TIMEOUT")
    outcome = b.outcome("DE", b.allow("DE"))
    outcome.failed("TIMEOUT")
    outcome.answered()
    assert outcome.record() is False
    assert not store.client.exists(b._key("DE"))  # closed and the count reset


def test_an_outcome_that_never_reached_the_upstream_gives_the_probe_back(store: Store) -> None:
    b = CircuitBreaker(store, "t", threshold=1, cooldown_s=0.1)
    b.record_failure("FR", "TIMEOUT")
    time.sleep(0.15)
    probe = b.allow("FR")
    assert probe.probe and not b.allow("FR").allowed
    assert b.outcome("FR", probe).record() is False
    assert b.allow("FR").probe  # the next caller probes at once, not after a cool-down
