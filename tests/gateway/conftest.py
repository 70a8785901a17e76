"""The whole suite as real processes on free loopback ports, and the gateway wired to it.

The simulators and the three services run once per test session (``suite``); each test gets
its own gateway app (``gateway``) with a fresh SQLite evidence log and a private Redis prefix,
so tests do not see each other's verdicts.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import create_app, shutdown
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, REDIS_URL, Processes, free_port, gunicorn_argv
from trace30.suite import moved_urls

API_KEY = "test-onboarding-key"
OPS_KEY = "test-ops-key"
WEBHOOK_SECRET = "test-webhook-secret"
ONBOARDING = {"Authorization": f"Bearer {API_KEY}"}
OPS = {"Authorization": f"Bearer {OPS_KEY}"}


@dataclass
class Suite:
    """Where each process of the session's suite listens."""

    urls: dict[str, str]
    env: dict[str, str]

    def sim(self, name: str) -> str:
        return self.urls[name]

    def stats(self, name: str) -> dict:
        return requests.get(self.urls[name] + "/_sim/stats", timeout=5).json()

    def reset(self) -> None:
        """Zero the simulators' counters and forget the services' caches and breakers."""
        for name in ("vies-simulator", "registers-simulator", "payee-simulator"):
            requests.post(self.urls[name] + "/_sim/reset", timeout=5).raise_for_status()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=self.env["TRACE30_REDIS_PREFIX"] + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()

    def configure(self, name: str, **knobs: object) -> None:
        requests.patch(self.urls[name] + "/_sim/config", json=knobs,
                       timeout=5).raise_for_status()

    def restore(self, name: str) -> None:
        knobs = requests.get(self.urls[name] + "/_sim/config", timeout=5).json()
        requests.patch(self.urls[name] + "/_sim/config", json=dict.fromkeys(knobs),
                       timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def suite(session_processes: Processes) -> Iterator[Suite]:
    """Simulators and the VAT, registry and payment services, started once.

    The services keep no answer in process memory and their breakers never open here (both
    are tested in their own suites), so that each test starts from what ``reset`` leaves.
    """
    ports = {8201: free_port(), 8202: free_port(), 8203: free_port(),
             8101: free_port(), 8102: free_port(), 8103: free_port()}
    env = {"TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
           "TRACE30_REDIS_URL": REDIS_URL,
           "TRACE30_REDIS_PREFIX": f"trace30test:suite{uuid.uuid4().hex[:8]}:",
           "TRACE30_VIES_DEADLINE_S": "1.5", "TRACE30_VIES_RETRY_BASE_S": "0.05",
           "TRACE30_VAT_LOCAL_CACHE_TTL_S": "0", "TRACE30_VIES_BREAKER_THRESHOLD": "1000",
           "TRACE30_REGISTRY_BREAKER_THRESHOLD": "1000", "TRACE30_REGISTRY_DEADLINE_S": "2",
           "TRACE30_REQUESTER_VAT_NUMBER": "NL004495445B01",
           "TRACE30_LOG_LEVEL": "WARNING", **moved_urls(ports)}
    urls = {}
    for name, module, port in (("vies-simulator", "simulators.vies", 8201),
                               ("registers-simulator", "simulators.registers", 8202),
                               ("payee-simulator", "simulators.payee", 8203)):
        urls[name] = session_processes.start(
            ["{python}", "-m", module, "--host", "127.0.0.1", "--port", "{port}"],
            health="/_sim/health", port=ports[port], env=env)
    for name, port in (("vat", 8101), ("registry", 8102), ("payment", 8103)):
        urls[name] = session_processes.start(
            gunicorn_argv(f"services.{name}.wsgi:app", workers=1, threads=8),
            port=ports[port], env=env)
    suite = Suite(urls, env)
    yield suite
    suite.reset()


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
