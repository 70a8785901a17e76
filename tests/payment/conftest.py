"""Fixtures of the payment service tests: the payee simulator as a real process, the app on it."""

from __future__ import annotations

import time

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.payment import create_app
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN

FINGERPRINT_KEY = "test-fingerprint-key-0123456789abcdef"
#: null puts a knob of the simulator back to its default.
PAYEE_DEFAULTS = {"latency_ms": None, "fail": None, "slow_seconds": None}



def settle(base: str, timeout_s: float = 10) -> None:
    """Wait until the simulator has answered every request, also those a client gave up on
    (a timed-out call is still counted when its answer is ready)."""
    end = time.monotonic() + timeout_s
    while requests.get(base + "/_sim/stats", timeout=5).json()["in_flight"]:
        if time.monotonic() > end:
            raise RuntimeError("the payee simulator still has requests in flight")
        time.sleep(0.02)



def settings(payee: str, store: Store, **extra: object) -> dict[str, object]:
    """The payment service's settings for a test: sandbox, real Redis, the simulator."""
    return {
        "TESTING": True,
        "SANDBOX": True,
        "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store,
        "PAYEE_VERIFICATION_URL": payee + "/vop/v1",
        "PAYEE_VERIFICATION_READ_TIMEOUT_S": 0.5,
        "PAYEE_BREAKER_THRESHOLD": 3,
        "PAYMENT_FINGERPRINT_KEY": FINGERPRINT_KEY,
        **extra,
    }


@pytest.fixture
def app(payee: str, store: Store) -> Flask:
    return create_app(settings(payee, store))


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()
