"""The gateway app of a test, for every test package (``pytest_plugins`` in the top
``conftest.py``): the retention tests use it too.

Each test gets its own gateway app (``gateway``) with a fresh SQLite evidence log and a private
Redis prefix, so tests do not see each other's verdicts.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask

from services.gateway import create_app, shutdown
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, Suite
from tests.gateway.conftest import api_keys


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
        # Tests that turn SANDBOX off keep a fresh SQLite file: migrate it as the sandbox does.
        "MIGRATE_ON_START": True,
    }


@pytest.fixture
def gateway(gateway_config: dict) -> Iterator[Flask]:
    app = create_app(gateway_config)
    yield app
    shutdown(app)
