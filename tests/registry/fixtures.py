"""Fixtures of the registers simulator, for every test package (``pytest_plugins`` in the top
``conftest.py``): the VAT service's fallback and the fuzz tests use it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Processes, reset_around, start_simulator
from tests.registry.conftest import SIM_DEFAULTS


@pytest.fixture(scope="session")
def registers_sim(session_processes: Processes) -> str:
    """The registers simulator as a real process; returns its base URL."""
    return start_simulator(session_processes, "registers", "--quiet")


@pytest.fixture
def sim(registers_sim: str) -> Iterator[str]:
    """The shared simulator with default knobs and zeroed statistics around the test."""
    yield from reset_around(registers_sim, SIM_DEFAULTS)
