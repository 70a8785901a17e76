"""Fixtures of the payee-verification simulator, for every test package (``pytest_plugins`` in
the top ``conftest.py``): the fuzz tests use it too."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Processes
from tests.payment.conftest import PAYEE_DEFAULTS, settle


@pytest.fixture(scope="session")
def payee_sim(session_processes: Processes) -> str:
    """The payee-verification simulator as a real process; its base URL. Reset it before use."""
    return session_processes.start(
        ["{python}", "-m", "simulators.payee", "--host", "127.0.0.1", "--port", "{port}"],
        health="/_sim/health",
    )


@pytest.fixture
def payee(payee_sim: str) -> Iterator[str]:
    """The shared payee simulator, reset (knobs and stats) around the test."""
    requests.patch(payee_sim + "/_sim/config", json=PAYEE_DEFAULTS, timeout=5).raise_for_status()
    settle(payee_sim)
    requests.post(payee_sim + "/_sim/reset", timeout=5).raise_for_status()
    yield payee_sim
    requests.patch(payee_sim + "/_sim/config", json=PAYEE_DEFAULTS, timeout=5).raise_for_status()
