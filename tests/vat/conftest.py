"""Fixtures of the VAT service tests: the app wired to the VIES simulator and real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.vat import create_app
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, VIES_PATH, Processes

REST_PATH = "/taxation_customs/vies/rest-api"


@pytest.fixture
def app(vies: str, store: Store) -> Flask:
    return create_app({
        "TESTING": True,
        "SANDBOX": True,
        "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "VIES_URL": vies + VIES_PATH,
        "REDIS_STORE": store,
        "VIES_DEADLINE_S": 1.5,
        "VIES_RETRY_BASE_S": 0.05,
        "VIES_RETRY_MAX_S": 0.1,
        "VIES_READ_TIMEOUT_S": 2.0,
        "VIES_STATUS_TTL_S": 0,
        "VIES_REST_URL": vies + REST_PATH,
    })


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


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


def configure(sim: str, **knobs: object) -> None:
    """PATCH a simulator's knobs."""
    requests.patch(sim + "/_sim/config", json=knobs, timeout=5).raise_for_status()
