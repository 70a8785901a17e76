"""Fixtures of the VAT service tests: the app wired to the VIES simulator and real Redis."""

from __future__ import annotations

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.vat import create_app
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, VIES_PATH

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


def configure(sim: str, **knobs: object) -> None:
    """PATCH a simulator's knobs."""
    requests.patch(sim + "/_sim/config", json=knobs, timeout=5).raise_for_status()
