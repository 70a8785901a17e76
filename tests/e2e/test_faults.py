"""Fault injection against the gateway as it runs in production: gunicorn processes, the
session's services and simulators, a real webhook receiver.

What a 202 promises (README, "What a 202 promises"): the verification ends ``settled`` (its
verdict, ``pending`` included) and its ``verification.completed`` webhook is delivered once
(one delivery, whatever its attempts), whatever fails meanwhile. Each test breaks one thing
while submissions are in flight — the evidence log (PostgreSQL behind a proxy that is cut for
10 s), Redis (a private server, killed and started again), a gateway worker (SIGKILL) — and
then checks every 202 it was given. No answer may be a 500.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import INTERNAL_TOKEN, REDIS_URL, Processes, Suite, gunicorn_argv
from tests.e2e.test_suite import README_TRADER
from tests.faults import PrivateRedis, TcpProxy
from tests.gateway import evidence_fixtures
from tests.gateway.evidence_fixtures import PG_URL, SEALING_KEYS
from tests.gateway.webhook_receiver import WebhookReceiver

#: Each test waits for every accepted verification to settle and report; on a loaded machine
#: that takes longer than the suite's default of 120 s.
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

KEY = "fault-test-key"
SIMS = ("vies-simulator", "registers-simulator", "payee-simulator")


def trader(n: int, run: str) -> dict[str, Any]:
    """The README's demo trader, distinct per ``n`` (so that every submission runs)."""
    return {**README_TRADER, "trader_id": f"{run}-{n}"}


class Run:
    """Submissions sent to one gateway and every answer they got."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.run = uuid.uuid4().hex[:8]
        self.answers: list[tuple[int, dict[str, str], dict[str, Any]]] = []
        self.before: list[int] = []  # the statuses answered before the fault was injected
        self._lock = threading.Lock()

    def submit(self, n: int) -> None:
        try:
            resp = requests.post(self.base + "/v1/verifications", json=trader(n, self.run),
                                 headers={"Authorization": f"Bearer {KEY}",
                                          "Prefer": "respond-async"}, timeout=30)
            answer = (resp.status_code, dict(resp.headers), resp.json())
        except requests.ConnectionError:  # a worker killed under this request
            answer = (0, {}, {})
        with self._lock:
            self.answers.append(answer)

    def submit_all(self, count: int, during: Callable[[], None], at: int) -> None:
        """Send ``count`` submissions from 16 threads; call ``during`` after ``at`` of them."""
        with ThreadPoolExecutor(16) as pool:
            futures = [pool.submit(self.submit, n) for n in range(at)]
            for f in futures:
                f.result()
            self.before = [status for status, _, _ in self.answers]
            during()
            futures = [pool.submit(self.submit, n) for n in range(at, count)]
            for f in futures:
                f.result()

    def accepted(self) -> list[str]:
        """The ids of the verifications answered 202."""
        return [body["id"] for status, _, body in self.answers if status == 202]

    def check_answers(self) -> None:
        """No 5xx but the 503 of a store outage, each a problem+json with Retry-After."""
        for status, headers, body in self.answers:
            assert status in (0, 200, 202, 503), (status, body)
            if status == 503:
                assert headers["Content-Type"] == "application/problem+json"
                assert int(headers["Retry-After"]) > 0

    def wait_settled(self, ids: list[str], timeout_s: float = 90) -> dict[str, dict]:
        """Poll each verification until it is settled; their last views."""
        views: dict[str, dict] = {}
        end = time.monotonic() + timeout_s
        while len(views) < len(ids) and time.monotonic() < end:
            for vid in ids:
                if vid in views:
                    continue
                try:
                    resp = requests.get(f"{self.base}/v1/verifications/{vid}",
                                        headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
                except requests.ConnectionError:
                    break
                if resp.status_code == 200 and resp.json()["state"] == "settled":
                    views[vid] = resp.json()
            time.sleep(0.5)
        missing = sorted(set(ids) - set(views))
        assert not missing, f"{len(missing)} accepted verifications never settled: {missing[:5]}"
        return views


def wait_webhooks(receiver: WebhookReceiver, ids: list[str],
                  timeout_s: float = 90) -> dict[str, set[str]]:
    """The delivery ids of the ``verification.completed`` webhooks, per verification, once
    every one of ``ids`` has one (and a moment more, for duplicates to show)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        deliveries = completed_deliveries(receiver)
        if set(ids) <= set(deliveries):
            time.sleep(1.5)
            return completed_deliveries(receiver)
        time.sleep(0.3)
    missing = sorted(set(ids) - set(completed_deliveries(receiver)))
    raise AssertionError(f"{len(missing)} accepted verifications got no webhook: {missing[:5]}")


def completed_deliveries(receiver: WebhookReceiver) -> dict[str, set[str]]:
    found: dict[str, set[str]] = defaultdict(set)
    for hook in list(receiver.received):
        event = json.loads(hook.body)
        if event["event"] == "verification.completed":
            found[event["verification"]["id"]].add(hook.headers["Trace30-Delivery"])
    return found


def assert_each_202_kept(run: Run, receiver: WebhookReceiver) -> None:
    run.check_answers()
    accepted = run.accepted()
    assert accepted, "no submission was accepted"
    views = run.wait_settled(accepted)
    # the traders share one IBAN, VAT number and SIREN (needs_review); a fault is never a verdict
    assert {v["verdict"] for v in views.values()} <= {"verified", "needs_review", "pending"}
    deliveries = wait_webhooks(receiver, accepted)
    sent_twice = {vid: d for vid, d in deliveries.items() if len(d) > 1}
    assert not sent_twice, f"completed sent more than once: {list(sent_twice.items())[:3]}"


def start_gateway(processes: Processes, env: dict[str, str], workers: int = 2) -> str:
    """The gateway under gunicorn as production runs it; its base URL."""
    return processes.start(gunicorn_argv("services.gateway.wsgi:app", workers=workers,
                                         threads=8), env=env)


def gateway_env(suite: Suite, receiver: WebhookReceiver, database_url: str,
                redis_url: str = REDIS_URL) -> dict[str, str]:
    return {
        "TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "TRACE30_REDIS_URL": redis_url,
        "TRACE30_REDIS_PREFIX": f"trace30test:faults{uuid.uuid4().hex[:8]}:",
        "TRACE30_DATABASE_URL": database_url, "TRACE30_EVIDENCE_SEALING_KEYS": SEALING_KEYS,
        "TRACE30_GATEWAY_API_KEYS": json.dumps([{
            "id": "shop", "key": KEY, "scopes": ["onboarding"], "webhook_url": receiver.url,
            "webhook_secret": "fault-test-secret"}]),
        "TRACE30_GATEWAY_VAT_URL": suite.urls["vat"],
        "TRACE30_GATEWAY_REGISTRY_URL": suite.urls["registry"],
        "TRACE30_GATEWAY_PAYMENT_URL": suite.urls["payment"],
        "TRACE30_GATEWAY_DEADLINE_S": "3", "TRACE30_GATEWAY_RECOVER_AFTER_S": "5",
        "TRACE30_GATEWAY_SWEEP_POLL_S": "0.5", "TRACE30_GATEWAY_PENDING_RETRY_S": "3,10",
        "TRACE30_WEBHOOK_POLL_S": "0.2", "TRACE30_WEBHOOK_BACKOFF_BASE_S": "0.2",
        "TRACE30_WEBHOOK_BACKOFF_MAX_S": "1", "TRACE30_LOG_LEVEL": "ERROR",
    }


@pytest.fixture
def pg_schema() -> Iterator[tuple[str, str]]:
    """A PostgreSQL schema of this test's own: (schema, URL reaching it directly)."""
    with evidence_fixtures.pg_schema() as schema:
        yield schema, evidence_fixtures.schema_url(schema)


@pytest.fixture
def slow_upstreams(suite: Suite) -> Iterator[None]:
    """Every simulator answers after 150 ms: verifications are in flight when things break."""
    suite.reset()
    for sim in SIMS:
        suite.configure(sim, latency_ms=150)
    yield
    for sim in SIMS:
        suite.restore(sim)


def test_database_unavailable_for_10_s_during_300_submissions(
        processes: Processes, suite: Suite, pg_schema: tuple[str, str],
        slow_upstreams: None) -> None:
    """Finding 1: all 226 that got 202 stayed running, no webhook, also after a restart."""
    schema, _ = pg_schema
    port = sa.make_url(PG_URL).port or 5432
    with WebhookReceiver() as receiver, TcpProxy(port) as proxy:
        url = sa.make_url(PG_URL).set(port=proxy.port).render_as_string(hide_password=False)
        env = gateway_env(suite, receiver, f"{url}?options=-csearch_path%3D{schema}")
        base = start_gateway(processes, env)
        run = Run(base)

        back = threading.Timer(10, proxy.restore)

        def outage() -> None:
            proxy.cut()
            back.start()

        run.submit_all(300, during=outage, at=100)
        back.join()  # the database is back, however fast the submissions were
        assert_each_202_kept(run, receiver)
        assert sum(1 for status, _, _ in run.answers if status == 503) > 0  # it was down
        # before the outage every submission was taken: 202, or 200 if it settled at once
        assert len(run.before) == 100 and set(run.before) <= {200, 202}


def test_redis_stopped_during_submissions(processes: Processes, suite: Suite,
                                          pg_schema: tuple[str, str],
                                          slow_upstreams: None) -> None:
    _, url = pg_schema
    with WebhookReceiver() as receiver, PrivateRedis() as redis_server:
        env = gateway_env(suite, receiver, url, redis_url=redis_server.url)
        base = start_gateway(processes, env)
        run = Run(base)

        back = threading.Timer(5, redis_server.start)

        def outage() -> None:
            redis_server.stop()
            back.start()

        run.submit_all(120, during=outage, at=40)
        assert_each_202_kept(run, receiver)
        back.join()  # Redis is started again before the test stops it for good
        # Redis is a cache: nothing is refused without it (202, or 200 if it settled at once)
        assert [s for s, _, _ in run.answers if s not in (200, 202)] == []


def worker_pids(master: int) -> list[int]:
    """The gunicorn workers of ``master`` (its child processes)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == master:
                pids.append(int(entry.name))
    return pids


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_gateway_worker_killed_during_submissions(processes: Processes, suite: Suite,
                                                    pg_schema: tuple[str, str], tmp_path: Path,
                                                    slow_upstreams: None, backend: str) -> None:
    """Finding 1: verifications of a killed worker stayed running forever. Its replacement's
    sweeper runs them again; each 202 gets its webhook once."""
    url = pg_schema[1] if backend == "postgresql" else f"sqlite:///{tmp_path}/evidence.sqlite3"
    for sim in SIMS:
        suite.configure(sim, latency_ms=1500)  # still running when the worker dies
    with WebhookReceiver() as receiver:
        env = gateway_env(suite, receiver, url)
        base = start_gateway(processes, env, workers=1)
        master = processes.procs[-1].pid
        run = Run(base)

        def kill() -> None:
            (worker,) = worker_pids(master)
            os.kill(worker, signal.SIGKILL)
            for sim in SIMS:
                suite.configure(sim, latency_ms=150)

        run.submit_all(40, during=kill, at=30)
        assert_each_202_kept(run, receiver)
        assert len(run.before) == 30 and set(run.before) <= {200, 202}
