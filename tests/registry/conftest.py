"""Fixtures of the registry service tests: the registers simulator as a real process, the app
wired to it and to real Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.registry import create_app
from services.registry.registers.http import new_session
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN

#: null puts every knob of the registers simulator back to its default.
SIM_DEFAULTS = dict.fromkeys(["latency_ms", "fail", "rate_limit", "retry_after_s", "sources"])
CH_KEY = "trace30-sandbox-companies-house-key"
CVR_USER, CVR_PASSWORD = "trace30-sandbox", "trace30-sandbox-cvr"



def configure(sim: str, **knobs: object) -> None:
    """PATCH the simulator's knobs."""
    requests.patch(sim + "/_sim/config", json=knobs, timeout=5).raise_for_status()


def stats(sim: str) -> dict:
    """The simulator's statistics."""
    return requests.get(sim + "/_sim/stats", timeout=5).json()



@pytest.fixture
def session() -> Iterator[requests.Session]:
    """A pooled session like the service's, closed afterwards."""
    s = new_session(4)
    yield s
    s.close()


def app_config(sim: str, store: Store, **overrides: object) -> dict[str, object]:
    """Settings of a registry app on the simulator and the test's Redis prefix."""
    return {
        "TESTING": True,
        "SANDBOX": True,
        "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store,
        "REGISTRY_GLEIF_URL": sim + "/gleif/api/v1",
        "REGISTRY_FR_RECHERCHE_URL": sim + "/recherche-entreprises",
        "REGISTRY_NO_BRREG_URL": sim + "/brreg/enhetsregisteret/api",
        "REGISTRY_GB_COMPANIES_HOUSE_URL": sim + "/companies-house",
        "REGISTRY_DK_CVR_URL": sim + "/cvr",
        "REGISTRY_CZ_ARES_URL": sim + "/ares/ekonomicke-subjekty-v-be/rest",
        "REGISTRY_PL_KRS_URL": sim + "/krs/api/krs",
        "REGISTRY_DEADLINE_S": 2.0,
        "REGISTRY_READ_TIMEOUT_S": 1.0,
        "REGISTRY_RETRY_BASE_S": 0.05,
        "REGISTRY_RETRY_MAX_S": 0.1,
        # fast enough that tests never wait for the limiter unless they mean to
        **{f"REGISTRY_{s}_RATE_PER_S": 1000.0
           for s in ("GLEIF", "FR_RECHERCHE", "NO_BRREG", "GB_COMPANIES_HOUSE", "DK_CVR",
                     "CZ_ARES", "PL_KRS")},
        **overrides,
    }


@pytest.fixture
def app(sim: str, store: Store) -> Flask:
    return create_app(app_config(sim, store))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
