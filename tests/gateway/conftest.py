"""The gateway tests' credentials and client; the app itself (``gateway``, ``gateway_config``)
is in ``tests/gateway/fixtures.py``, which every test package has."""

from __future__ import annotations

import json

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
