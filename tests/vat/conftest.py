"""Fixtures of the VAT service tests: the app wired to the VIES simulator and real Redis."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.vat import create_app
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, VIES_PATH


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
    })


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
