"""A population of traders seeded through the gateway, and RQ workers as real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
from stdnum.iso7064 import mod_11_10

from services.gateway import create_app, shutdown
from tests.conftest import INTERNAL_TOKEN, REDIS_URL, ROOT, Suite
from tests.gateway.webhook_receiver import WebhookReceiver
from trace30.keys import job_key_pattern

API_KEY = "batch-test-key"
WEBHOOK_SECRET = "batch-webhook-secret"


def de_vat(i: int) -> str:
    """A checksum-valid German VAT number, different for each ``i``."""
    base = f"{81000000 + i * 7:08d}"
    return "DE" + base + mod_11_10.calc_check_digit(base)


def iban(i: int) -> str:
    """A German IBAN whose national check digits pass, different for each ``i``."""
    from schwifty import IBAN
    from schwifty.exceptions import SchwiftyException

    account = 732013000 + i * 1000  # clear of the payee simulator's demo accounts
    while True:
        try:
            candidate = IBAN.generate("DE", bank_code="37040044", account_code=f"{account:010d}")
            IBAN(str(candidate), validate_bban=True)
            return str(candidate)
        except SchwiftyException:
            account += 1


def trader(i: int) -> dict[str, Any]:
    return {
        "trader_id": f"trader-{i:03d}",
        "name": f"Hanna Handel {i}",  # a sole trader: no company form, no register
        "address": {"street": f"Hauptstr. {i}", "postcode": "10115", "city": "Berlin",
                    "country_code": "DE"},
        "email": f"info{i}@handel.example",
        "phone": "+49 30 1234567",
        "identification": {"type": "eid"},
        "payment": {"iban": iban(i), "account_holder": f"Hanna Handel {i}"},
        "vat_number": de_vat(i),
        "self_certification": {"accepted": True},
    }


class Batch:
    """The settings of a batch test: one database, one Redis prefix, one webhook URL."""

    def __init__(self, suite: Suite, env: dict[str, str], config: dict[str, Any]) -> None:
        self.suite = suite
        self.env = env
        self.config = config
        self.workers: list[subprocess.Popen] = []
        self.receiver: WebhookReceiver
        self.token = ""

    def seed(self, traders: list[dict[str, Any]], key: str = API_KEY) -> list[dict[str, Any]]:
        """Verify ``traders`` through an in-process gateway (as the client of ``key``); return
        its answers."""
        app = create_app(self.config)
        client = app.test_client()
        headers = {"Authorization": f"Bearer {key}", "Prefer": "wait=30"}
        try:
            with ThreadPoolExecutor(4) as pool:
                return list(pool.map(lambda t: client.post("/v1/verifications", json=t,
                                                           headers=headers).get_json(),
                                     traders))
        finally:
            shutdown(app)

    def start_worker(self) -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, "-m", "trace30.cli", "worker"], cwd=ROOT,
                                env={**os.environ, **self.env}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.workers.append(proc)
        return proc

    def kill(self, proc: subprocess.Popen) -> None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(10)

    def stop_workers(self) -> None:
        for proc in self.workers:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.workers:
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def batch(suite: Suite, redis_prefix: str, tmp_path: Path) -> Iterator[Batch]:
    suite.reset()
    receiver = WebhookReceiver().__enter__()
    keys = json.dumps([{"id": "shop", "key": API_KEY, "scopes": ["onboarding", "ops", "batch"],
                        "webhook_url": receiver.url, "webhook_secret": WEBHOOK_SECRET}])
    env = {
        "TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "TRACE30_REDIS_URL": REDIS_URL, "TRACE30_REDIS_PREFIX": redis_prefix,
        "TRACE30_DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3",
        "TRACE30_GATEWAY_VAT_URL": suite.urls["vat"],
        "TRACE30_GATEWAY_REGISTRY_URL": suite.urls["registry"],
        "TRACE30_GATEWAY_PAYMENT_URL": suite.urls["payment"],
        "TRACE30_GATEWAY_API_KEYS": keys, "TRACE30_GATEWAY_DEADLINE_S": "6",
        "TRACE30_BATCH_RETRY_S": "1,1", "TRACE30_BATCH_LEASE_S": "2",
        "TRACE30_WEBHOOK_POLL_S": "0.2", "TRACE30_LOG_LEVEL": "WARNING",
    }
    config = {k.removeprefix("TRACE30_"): v for k, v in env.items()}
    config.update({"TESTING": True, "SANDBOX": True, "GATEWAY_BACKGROUND": False,
                   "GATEWAY_DEADLINE_S": 6.0, "GATEWAY_API_KEYS": keys})
    b = Batch(suite, env, config)
    b.receiver = receiver
    b.token = uuid.uuid4().hex[:10]
    yield b
    b.stop_workers()
    receiver.__exit__(None, None, None)
    suite.restore("vies-simulator")
    conn = redis.Redis.from_url(REDIS_URL)
    queue = redis_prefix.replace(":", "-")
    for pattern in (f"rq:*{queue}*", f"rq:*{b.token}*"):
        for key in conn.scan_iter(match=pattern, count=1000):
            conn.delete(key)
    # RQ's job keys (rq:job:{id}) are outside the key prefix; their ids carry the deployment,
    # here this test's prefix, so the test's jobs are found by it.
    for key in conn.scan_iter(match=job_key_pattern(redis_prefix), count=1000):
        conn.delete(key)
    conn.close()
