"""Fixtures of the national VAT sources' simulators (HMRC, the UID register, Brønnøysund), for
every test package (``pytest_plugins`` in the top ``conftest.py``): the VAT tests and the
adapter contract suite (``tests/contract``) use them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.conftest import Processes


@pytest.fixture(scope="session")
def hmrc_sim(session_processes: Processes) -> str:
    """The HMRC simulator as a real process; returns its base URL."""
    return session_processes.start(
        ["{python}", "-m", "simulators.hmrc", "--host", "127.0.0.1", "--port", "{port}",
         "--quiet"], health="/_sim/health")


@pytest.fixture(scope="session")
def uid_sim(session_processes: Processes) -> str:
    """The UID register simulator as a real process; returns its base URL."""
    return session_processes.start(
        ["{python}", "-m", "simulators.uid", "--host", "127.0.0.1", "--port", "{port}",
         "--quiet"], health="/_sim/health")


def restored(sim: str) -> Iterator[str]:
    """``sim`` with its knobs back to their defaults and its counters zeroed, around a test."""
    def restore() -> None:
        knobs = requests.get(sim + "/_sim/config", timeout=5).json()
        requests.patch(sim + "/_sim/config", json=dict.fromkeys(knobs),
                       timeout=5).raise_for_status()
        requests.post(sim + "/_sim/reset", timeout=5).raise_for_status()
    restore()
    yield sim
    restore()


@pytest.fixture
def hmrc(hmrc_sim: str) -> Iterator[str]:
    yield from restored(hmrc_sim)


@pytest.fixture
def uid(uid_sim: str) -> Iterator[str]:
    yield from restored(uid_sim)


@pytest.fixture
def brreg(registers_sim: str) -> Iterator[str]:
    yield from restored(registers_sim)
