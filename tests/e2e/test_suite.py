"""The suite as real processes: the VAT cap across gunicorn workers, and ``trace30 run``."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.conftest import (
    AUTH,
    INTERNAL_TOKEN,
    REDIS_URL,
    ROOT,
    VIES_PATH,
    Processes,
    free_offset,
    gunicorn_argv,
    wait_http,
)
from trace30.suite import components

pytestmark = pytest.mark.slow  # the suite as real processes

README_TRADER = {
    "trader_id": "boulangerie-martin", "name": "Boulangerie Martin SAS",
    "address": {"street": "4 rue du Four", "postcode": "75006", "city": "Paris",
                "country_code": "FR"},
    "email": "contact@boulangerie-martin.example", "phone": "+33 1 42 22 00 00",
    "identification": {"type": "national_id"},
    "payment": {"iban": "FR7630004000030001234567897",
                "account_holder": "Boulangerie Martin SAS"},
    "registration": {"country_code": "FR", "number": "812345676", "kind": "siren"},
    "vat_number": "FR19812345676", "self_certification": {"accepted": True},
}


def test_cap_holds_across_gunicorn_workers(processes: Processes, redis_prefix: str) -> None:
    """Three worker processes together never exceed the member state's cap of 2."""
    sim = processes.start(
        ["{python}", "-m", "simulators.vies", "--host", "127.0.0.1", "--port", "{port}",
         "--latency-ms", "150", "--ms-limit", "DE=2"],
        health="/_sim/health",
    )
    vat = processes.start(
        gunicorn_argv("services.vat.wsgi:app", workers=3, threads=1),
        env={"TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
             "TRACE30_REDIS_URL": REDIS_URL, "TRACE30_REDIS_PREFIX": redis_prefix,
             "TRACE30_VIES_URL": sim + VIES_PATH, "TRACE30_VIES_MS_CONCURRENCY_OVERRIDES": "DE=2"},
    )

    def one(_: int) -> dict:
        resp = requests.post(vat + "/v1/vat/check", json={"vat_number": "DE100", "max_age_s": 0},
                             headers=AUTH, timeout=20)
        return resp.json()

    with ThreadPoolExecutor(12) as pool:
        results = list(pool.map(one, range(12)))
    assert [r["status"] for r in results] == ["valid"] * 12
    stats = requests.get(sim + "/_sim/stats", timeout=5).json()
    assert stats["calls"] == 12
    assert stats["max_in_flight"]["DE"] <= 2
    assert stats["faults"].get("MS_MAX_CONCURRENT_REQ", 0) == 0


def test_trace30_run_serves_the_sandbox(redis_prefix: str, tmp_path) -> None:
    """What the README promises: ``TRACE30_SANDBOX=1 make run`` answers DE100 and DE301, and
    the gateway verifies the README's demo trader through the three services."""
    offset = free_offset(tuple(c.port for c in components()))
    env = {**os.environ, "TRACE30_SANDBOX": "1", "TRACE30_REDIS_URL": REDIS_URL,
           "TRACE30_REDIS_PREFIX": redis_prefix, "PYTHONPATH": str(ROOT),
           "TRACE30_DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3"}
    env.pop("TRACE30_INTERNAL_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "trace30.cli", "run", "--port-offset", str(offset)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{8101 + offset}"
    gateway = f"http://127.0.0.1:{8080 + offset}"
    try:
        wait_http(gateway + "/healthz", proc, timeout_s=60)
        headers = {"Authorization": "Bearer trace30-sandbox-internal-token"}
        valid = requests.post(base + "/v1/vat/check", json={"vat_number": "DE100"},
                              headers=headers, timeout=20).json()
        assert valid["status"] == "valid" and valid["name"] == "John Doe"
        down = requests.post(base + "/v1/vat/check", json={"vat_number": "DE301"},
                             headers=headers, timeout=20).json()
        assert down["status"] == "unavailable"
        assert down["error"]["code"] == "MS_UNAVAILABLE"
        verdict = requests.post(gateway + "/v1/verifications", json=README_TRADER, timeout=30,
                                headers={"Authorization": "Bearer trace30-sandbox-key",
                                         "Prefer": "wait=20"})
        assert verdict.status_code == 200, verdict.text
        assert verdict.json()["verdict"] == "verified", verdict.json()["reasons"]
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=20) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
            if proc.stdout:
                proc.stdout.close()
