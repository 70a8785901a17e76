"""Each service as a Flask test client wired as its own tests wire it (issue 9's input checks).

The VAT, registry and payment services use the VIES, registers and payee simulators (real
processes on loopback, so that what they send really goes through zeep and requests), like
their own tests; the gateway uses the session's suite of services and simulators.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import create_app as create_gateway
from services.gateway import shutdown
from services.payment import create_app as create_payment
from services.registry import create_app as create_registry
from services.vat import create_app as create_vat
from shared.redis_client import Store
from tests.conftest import AUTH, INTERNAL_TOKEN, VIES_PATH, Suite
from tests.gateway.conftest import ONBOARDING, api_keys
from tests.payment.conftest import payee, payee_sim  # noqa: F401 (fixtures)
from tests.payment.conftest import settings as payment_settings
from tests.registry.conftest import app_config as registry_config
from tests.registry.conftest import registers_sim, sim  # noqa: F401 (fixtures)

SERVICES = ["vat", "registry", "payment", "gateway"]


@dataclass
class Service:
    """A service under test: its app, a client, where its check is POSTed, its credentials."""

    name: str
    app: Flask
    check_path: str
    auth: dict[str, str]

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()


@pytest.fixture
def vat_service(vies: str, store: Store) -> Service:
    app = create_vat({"TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
                      "REDIS_STORE": store, "VIES_URL": vies + VIES_PATH,
                      "VIES_DEADLINE_S": 1.5, "VIES_RETRY_BASE_S": 0.05,
                      "VIES_RETRY_MAX_S": 0.1, "VIES_READ_TIMEOUT_S": 2.0})
    return Service("vat", app, "/v1/vat/check", AUTH)


@pytest.fixture
def registry_service(sim: str, store: Store) -> Service:  # noqa: F811
    return Service("registry", create_registry(registry_config(sim, store)),
                   "/v1/registry/check", AUTH)


@pytest.fixture
def payment_service(payee: str, store: Store) -> Service:  # noqa: F811
    return Service("payment", create_payment(payment_settings(payee, store)),
                   "/v1/payment/check", AUTH)


def gateway_settings(suite: Suite, store: Store, database_url: str) -> dict:
    """A gateway on the session's suite, with its own evidence log and Redis prefix."""
    suite.reset()
    return {
        "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store, "DATABASE_URL": database_url,
        "GATEWAY_VAT_URL": suite.urls["vat"], "GATEWAY_REGISTRY_URL": suite.urls["registry"],
        "GATEWAY_PAYMENT_URL": suite.urls["payment"], "GATEWAY_API_KEYS": api_keys(),
        "GATEWAY_BACKGROUND": False, "GATEWAY_DEADLINE_S": 6.0,
    }


@pytest.fixture
def gateway_service(suite: Suite, store: Store, tmp_path: Path) -> Iterator[Service]:
    app = create_gateway(gateway_settings(suite, store,
                                          f"sqlite:///{tmp_path}/evidence.sqlite3"))
    yield Service("gateway", app, "/v1/verifications", ONBOARDING)
    shutdown(app)


@pytest.fixture(params=SERVICES)
def service(request: pytest.FixtureRequest) -> Service:
    """Each of the four services in turn."""
    return request.getfixturevalue(f"{request.param}_service")
