"""The gateway tests' credentials and client; the app itself (``gateway``, ``gateway_config``)
is in ``tests/gateway/fixtures.py``, which every test package has."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.conftest import free_port

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
def client(gateway: Flask) -> FlaskClient:
    return gateway.test_client()


@pytest.fixture
def webhook_port() -> int:
    return free_port()


@pytest.fixture
def casework_app(gateway_config: dict) -> Iterator[Flask]:
    """A gateway whose marketplace client has a webhook URL: the webhooks of the casework are
    written to the outbox (the tests read it; the sender does not run)."""
    from services.gateway import create_app, shutdown
    from tests.gateway.casework_util import HOOK_URL

    app = create_app({**gateway_config, "GATEWAY_API_KEYS": api_keys(HOOK_URL)})
    yield app
    shutdown(app)


@pytest.fixture
def casework_api(casework_app: Flask) -> FlaskClient:
    return casework_app.test_client()
