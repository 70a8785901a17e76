"""Fixtures of the registers simulator, for every test package (``pytest_plugins`` in the top
``conftest.py``): the VAT service's fallback and the fuzz tests use it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Processes
from tests.registry.conftest import SIM_DEFAULTS, configure


@pytest.fixture(scope="session")
def registers_sim(session_processes: Processes) -> str:
    """The registers simulator as a real process; returns its base URL."""
    return session_processes.start(
        ["{python}", "-m", "simulators.registers", "--host", "127.0.0.1", "--port", "{port}",
         "--quiet"],
        health="/_sim/health",
    )


@pytest.fixture
def sim(registers_sim: str) -> Iterator[str]:
    """The shared simulator with default knobs and zeroed statistics around the test."""
    configure(registers_sim, **SIM_DEFAULTS)
    requests.post(registers_sim + "/_sim/reset", timeout=5).raise_for_status()
    yield registers_sim
    configure(registers_sim, **SIM_DEFAULTS)
