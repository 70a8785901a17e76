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
