"""The gateway's metrics: verdicts, its verdict cache and routes after real submissions, and the
scrape-time gauges (services/gateway/gauges.py) of the evidence log's backlogs, the RQ queue and
the batch runs."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
import requests
from flask.testing import FlaskClient
from rq import Queue

from services.gateway.evidence import EvidenceLog
from services.gateway.gauges import EvidenceGauges, QueueGauges
from shared.config import load
from shared.redis_client import Store
from tests.conftest import REDIS_URL
from tests.gateway.conftest import ONBOARDING
from tests.gateway.evidence_fixtures import T0, make_record
from tests.gateway.test_flow import GOOD
from tests.shared.test_metrics import Samples, samples, value
from trace30.batch import enqueue
from trace30.keys import RunKeys


def collected(collector: Any) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in collector.collect() for s in family.samples}


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200
    return samples(response.get_data(as_text=True))


def test_a_submission_moves_verdicts_cache_and_routes(client: FlaskClient) -> None:
    before = scrape(client)
    first = client.post("/v1/verifications", json=GOOD, headers=ONBOARDING)
    assert first.status_code in (200, 201), first.get_json()
    verdict = first.get_json()["verdict"]
    again = client.post("/v1/verifications", json=GOOD, headers=ONBOARDING)
    assert again.get_json()["cached"] is True
    got = client.get(f"/v1/verifications/{first.get_json()['id']}", headers=ONBOARDING)
    assert got.status_code == 200
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("trace30_verdicts_total", verdict=verdict, priority="interactive") == 1
    assert moved("trace30_cache_lookups_total", cache="gateway_verdict", result="miss") >= 1
    assert moved("trace30_cache_lookups_total", cache="gateway_verdict", result="hit") >= 1
    assert moved("trace30_http_requests_total", service="gateway", method="GET",
                 route="/v1/verifications/<verification_id>", status="200") == 1
    text = client.get("/metrics").get_data(as_text=True)
    assert first.get_json()["id"] not in text and GOOD["trader_id"] not in text
    # the scrape-time collectors answered, from the gateway's own evidence log and Redis
    assert value(after, "trace30_scrape_collector_up", collector="evidence") == 1
    assert value(after, "trace30_scrape_collector_up", collector="batch") == 1
    assert ("trace30_webhook_outbox_depth", frozenset()) in after


def test_the_evidence_gauges_count_the_backlogs(evidence_log: EvidenceLog) -> None:
    def minutes(n: int) -> timedelta:
        return timedelta(minutes=n)

    gauges = EvidenceGauges(evidence_log, now=lambda: T0 + minutes(10))
    empty = collected(gauges)
    assert empty[("trace30_verifications_pending", frozenset())] == 0
    assert empty[("trace30_verifications_pending_overdue_seconds", frozenset())] == 0
    evidence_log.save(make_record("v1", "t1", verdict="pending", next_retry_at=T0 + minutes(4)))
    evidence_log.save(make_record("v2", "t2", verdict="pending", next_retry_at=T0 + minutes(20)))
    evidence_log.save(make_record("v3", "t3", state="running", verdict=None, items=None,
                                  reasons=None, settled_at=None))
    evidence_log.save(make_record("v4", "t4"))
    with evidence_log.transaction() as tx:
        ids = [tx.enqueue_webhook(client_id="shop", url="https://shop.example/hook",
                                  event="verification.completed", payload={"id": vid},
                                  verification_id=vid, trader_id="t1", tenant="default")
               for vid in ("v1", "v2")]
    evidence_log.record_attempt(ids[0], status_code=200, error=None, duration_ms=3.0,
                                delivered=True, next_attempt_at=None, at=T0)
    found = collected(gauges)
    assert found[("trace30_verifications_pending", frozenset())] == 2
    assert found[("trace30_verifications_pending_overdue_seconds", frozenset())] == 6 * 60
    assert found[("trace30_verifications_running", frozenset())] == 1
    assert found[("trace30_webhook_outbox_depth", frozenset())] == 1


@pytest.fixture
def rq_queue(store: Store) -> Iterator[tuple[dict[str, Any], Queue]]:
    """Settings naming an RQ queue of this test's own (its prefix), and the queue."""
    settings = load({}, {"REDIS_PREFIX": store.prefix, "INTERNAL_TOKEN": "x"})
    from trace30.keys import queue_name
    conn = redis.Redis.from_url(REDIS_URL)
    queue = Queue(queue_name(settings), connection=conn)
    yield settings, queue
    queue.delete(delete_jobs=True)
    conn.close()


def test_the_queue_gauges_read_rq_and_the_batch_runs(
        store: Store, rq_queue: tuple[dict[str, Any], Queue]) -> None:
    settings, queue = rq_queue
    gauges = QueueGauges(store, settings)
    found = collected(gauges)
    assert found[("trace30_rq_jobs", frozenset({("queue", queue.name), ("state", "queued")}))] == 0
    items = {f"trader-{i}": "{}" for i in range(3)}
    assert enqueue(settings, store, queue, "default-20261130-abc", items, tenant="default") == 3
    store.client.hset(RunKeys(store, "default-20261130-abc", "default").results, "trader-0",
                      '{"status": "verified"}')
    found = collected(gauges)
    assert found[("trace30_rq_jobs", frozenset({("queue", queue.name), ("state", "queued")}))] == 3
    run = frozenset({("run", "default-20261130-abc")})
    assert found[("trace30_batch_run_traders", run)] == 3
    assert found[("trace30_batch_run_done", run)] == 1
    assert all("trader-" not in str(key) for key in found)


def test_webhook_attempts_are_counted_by_outcome(evidence_log: EvidenceLog) -> None:
    """A receiver failing twice: two attempts 'retrying', then 'delivered'; a receiver that
    never answers 2xx, with one attempt allowed: 'failed' (given up)."""
    from prometheus_client import REGISTRY

    from tests.gateway.test_webhooks import enqueue, make_sender
    from tests.gateway.webhook_receiver import WebhookReceiver

    def count(outcome: str) -> float:
        return REGISTRY.get_sample_value("trace30_webhook_attempts_total", {
            "event": "verification.completed", "outcome": outcome}) or 0.0

    before = {o: count(o) for o in ("delivered", "retrying", "failed")}
    with requests.Session() as session, WebhookReceiver(fail_first=2) as receiver:
        enqueue(evidence_log, receiver.url)
        sender = make_sender(evidence_log, session, backoff_base_s=0.01, backoff_max_s=0.02)
        deadline = time.monotonic() + 20
        while count("delivered") == before["delivered"] and time.monotonic() < deadline:
            sender.deliver_due()
            time.sleep(0.02)
    with requests.Session() as session, WebhookReceiver(fail_first=99) as receiver:
        enqueue(evidence_log, receiver.url, vid="v2")
        assert make_sender(evidence_log, session, max_attempts=1).deliver_due() == 1
    assert count("retrying") - before["retrying"] == 2
    assert count("delivered") - before["delivered"] == 1
    assert count("failed") - before["failed"] == 1
