"""Failure cases every register adapter must translate the same way (used by each
``test_<adapter>.py`` against the registers simulator)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from services.registry.registers import (
    RegisterError,
    RegisterServerError,
    RegisterThrottled,
    RegisterTimeout,
    RegisterUnreachable,
)
from tests.conftest import free_port
from tests.registry.conftest import configure, stats

Lookup = Callable[[], object]


def throttled(sim: str, source: str, lookup: Lookup) -> None:
    """429 with Retry-After becomes RegisterThrottled carrying the wait, not an outage."""
    configure(sim, sources={source: {"rate_limit": 0, "retry_after_s": 7}})
    with pytest.raises(RegisterThrottled) as info:
        lookup()
    assert info.value.retry_after_s == 7.0
    assert info.value.retryable and not info.value.outage
    assert info.value.code == "UPSTREAM_THROTTLED"


def timed_out(sim: str, source: str, lookup: Lookup) -> None:
    """An answer slower than the read timeout is RegisterTimeout, an outage."""
    configure(sim, sources={source: {"latency_ms": 1500}})
    with pytest.raises(RegisterTimeout) as info:
        lookup()
    assert info.value.outage and info.value.retryable


def server_errors(sim: str, source: str, lookup: Lookup) -> None:
    """500 (JSON) and 503 (an HTML gateway page) are RegisterServerError."""
    for status in (500, 503):
        configure(sim, sources={source: {"fail": status}})
        with pytest.raises(RegisterServerError) as info:
            lookup()
        assert str(status) in str(info.value)


def unreachable(make: Callable[[str], Lookup]) -> None:
    """Nobody listening is RegisterUnreachable."""
    with pytest.raises(RegisterUnreachable):
        make(f"http://127.0.0.1:{free_port()}")()


def only_this_source(sim: str, source: str, other: str, lookup: Lookup) -> None:
    """Per-source knobs leave the other registers alone."""
    configure(sim, sources={other: {"fail": 503}})
    try:
        lookup()
    except RegisterError as e:  # pragma: no cover - the assertion below explains
        pytest.fail(f"{source} failed because of {other}'s knob: {e!r}")


def stats_status(sim: str, source: str, status: int) -> int:
    """How many answers of ``status`` the simulator sent for ``source``."""
    return int(stats(sim)["by_status"].get(source, {}).get(str(status), 0))
