"""The gateway wired to the session's suite (``suite`` in tests/conftest.py).

Each test gets its own gateway app (``gateway``) with a fresh SQLite evidence log and a private
Redis prefix, so tests do not see each other's verdicts.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import create_app, shutdown
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, Suite, free_port

API_KEY = "test-onboarding-key"
OPS_KEY = "test-ops-key"
WEBHOOK_SECRET = "test-webhook-secret"
ONBOARDING = {"Authorization": f"Bearer {API_KEY}"}
OPS = {"Authorization": f"Bearer {OPS_KEY}"}


def api_keys(webhook_url: str | None = None) -> str:
    return json.dumps([
        {"id": "shop", "key": API_KEY, "scopes": ["onboarding"], "webhook_url": webhook_url,
         "webhook_secret": WEBHOOK_SECRET},
        {"id": "staff", "key": OPS_KEY, "scopes": ["ops", "batch"]},
    ])


@pytest.fixture
def gateway_config(suite: Suite, store: Store, tmp_path) -> dict:
    """Settings of a gateway wired to the session's suite (tests may change them)."""
    suite.reset()
    return {
        "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store, "DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3",
        "GATEWAY_VAT_URL": suite.urls["vat"], "GATEWAY_REGISTRY_URL": suite.urls["registry"],
        "GATEWAY_PAYMENT_URL": suite.urls["payment"], "GATEWAY_API_KEYS": api_keys(),
        "GATEWAY_BACKGROUND": False, "GATEWAY_DEADLINE_S": 6.0,
        "WEBHOOK_BACKOFF_BASE_S": 0.05, "WEBHOOK_BACKOFF_MAX_S": 0.2,
    }


@pytest.fixture
def gateway(gateway_config: dict) -> Iterator[Flask]:
    app = create_app(gateway_config)
    yield app
    shutdown(app)


@pytest.fixture
def client(gateway: Flask) -> FlaskClient:
    return gateway.test_client()


@pytest.fixture
def webhook_port() -> int:
    return free_port()
