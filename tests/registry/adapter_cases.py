"""Cases every register adapter's tests share against the registers simulator (the fault
contract itself, timeouts, throttles, outages, is ``tests/contract/test_adapters.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from shared.upstream import UpstreamError
from tests.registry.conftest import configure, stats

Lookup = Callable[[], object]


def only_this_source(sim: str, source: str, other: str, lookup: Lookup) -> None:
    """Per-source knobs leave the other registers alone."""
    configure(sim, sources={other: {"fail": 503}})
    try:
        lookup()
    except UpstreamError as e:  # pragma: no cover - the assertion below explains
        pytest.fail(f"{source} failed because of {other}'s knob: {e!r}")


def stats_status(sim: str, source: str, status: int) -> int:
    """How many answers of ``status`` the simulator sent for ``source``."""
    return int(stats(sim)["by_status"].get(source, {}).get(str(status), 0))
