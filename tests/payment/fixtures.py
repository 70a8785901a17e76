"""Fixtures of the payee-verification simulator, for every test package (``pytest_plugins`` in
the top ``conftest.py``): the fuzz tests use it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Processes, reset_around, start_simulator
from tests.payment.conftest import PAYEE_DEFAULTS, settle


@pytest.fixture(scope="session")
def payee_sim(session_processes: Processes) -> str:
    """The payee-verification simulator as a real process; its base URL. Reset it before use."""
    return start_simulator(session_processes, "payee")


@pytest.fixture
def payee(payee_sim: str) -> Iterator[str]:
    """The shared payee simulator, reset (knobs and stats) around the test."""
    yield from reset_around(payee_sim, PAYEE_DEFAULTS, settle)
