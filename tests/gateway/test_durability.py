"""What a 202 promises: accepted work is settled, or left pending, whatever fails meanwhile.

Issue 9's findings, each as a regression test: a verification whose settling fails (the
evidence log blips) is recovered by the sweeper and its webhook sent once; an identical
resubmission while one runs answers the running verification (202 + Location), never 500;
a single-flight lock left by a dead process is taken over; the sweeper leases its work in SQL
(several processes, one run each) and one record that cannot be unsealed does not stop it;
an outage of the evidence log is a 503 with ``Retry-After``. Storage is exercised on SQLite
and PostgreSQL (``database_url``).
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask

from services.gateway import create_app, shutdown
from services.gateway.evidence import EvidenceLog, webhook_deliveries_table
from services.gateway.sealing import Sealer
from services.gateway.verifications import RetryLoop, Verifier
from tests.faults import TcpProxy
from tests.gateway.conftest import ONBOARDING, OPS, api_keys
from tests.gateway.evidence_fixtures import T0, make_record
from tests.gateway.test_flow import GOOD, post, submission
from tests.gateway.webhook_receiver import WebhookReceiver

SIMS = ("vies-simulator", "registers-simulator", "payee-simulator")


def verifier_of(app: Flask) -> Verifier:
    return app.extensions["trace30.gateway"]


def completed_hooks(receiver: WebhookReceiver) -> Counter[str]:
    """How many ``verification.completed`` webhooks arrived, per verification id."""
    events = [json.loads(h.body) for h in receiver.received]
    return Counter(e["verification"]["id"] for e in events
                   if e["event"] == "verification.completed")


def outbox(log: EvidenceLog, verification_id: str) -> list[str]:
    d = webhook_deliveries_table
    with log.engine.connect() as conn:
        return list(conn.execute(sa.select(d.c.event)
                                 .where(d.c.verification_id == verification_id)).scalars())


# -- the evidence log: settle once, promise once, lease once -------------------------------------


def running(vid: str, **changes: Any):
    values: dict[str, Any] = {"state": "running", "verdict": None, "settled_at": None,
                              "checked_at": None, "next_retry_at": T0 + timedelta(seconds=40)}
    return make_record(vid, **{**values, **changes})


def settled_copy(vid: str, attempts: int = 1):
    return make_record(vid, attempts=attempts)


def test_a_verification_is_settled_by_one_run_only(evidence_log: EvidenceLog) -> None:
    evidence_log.save(running("v1"), private_submission={"trader_id": "trader-1"})
    with evidence_log.transaction() as tx:
        assert tx.settle(settled_copy("v1"), expected_attempts=0) is False  # no 202 promised
    with evidence_log.transaction() as tx:  # a second run of the same attempt loses
        assert tx.settle(settled_copy("v1"), expected_attempts=0) is None
    assert evidence_log.get("v1").attempts == 1
    assert evidence_log.current("trader-1", tenant="default").id == "v1"


def test_a_promise_made_while_running_is_kept_once(evidence_log: EvidenceLog) -> None:
    evidence_log.save(running("v1"))
    assert evidence_log.request_notification("v1") is True
    with evidence_log.transaction() as tx:
        assert tx.settle(make_record("v1", verdict="pending", attempts=1),
                         expected_attempts=0) is True
    assert evidence_log.request_notification("v1") is False  # settled: read it instead
    with evidence_log.transaction() as tx:  # the pending verdict retried: no second promise
        assert tx.settle(settled_copy("v1", attempts=2), expected_attempts=1) is False
    assert evidence_log.request_notification("unknown") is False


def test_settling_and_its_webhooks_commit_together(evidence_log: EvidenceLog) -> None:
    evidence_log.save(running("v1"))
    with pytest.raises(RuntimeError), evidence_log.transaction() as tx:
        tx.settle(settled_copy("v1"), expected_attempts=0)
        tx.enqueue_webhook(client_id="shop", url="http://127.0.0.1:9/hook",
                           event="verification.completed", payload={}, verification_id="v1",
                           trader_id="trader-1", tenant="default")
        raise RuntimeError("the process dies before the commit")
    assert evidence_log.get("v1").state == "running"
    assert outbox(evidence_log, "v1") == []


def test_abandoned_running_verifications_are_leased_once(evidence_log: EvidenceLog) -> None:
    evidence_log.save(running("late", next_retry_at=T0 + timedelta(seconds=10)))
    evidence_log.save(running("fresh", next_retry_at=T0 + timedelta(seconds=100)))
    evidence_log.save(running("legacy", next_retry_at=None))  # from before migration 0005
    evidence_log.save(make_record("done"))
    now = T0 + timedelta(seconds=60)
    first = evidence_log.claim_stale_running(now, 10, lease_s=30)
    assert sorted(r.id for r in first) == ["late", "legacy"]
    assert evidence_log.claim_stale_running(now, 10, lease_s=30) == []  # leased
    again = evidence_log.claim_stale_running(now + timedelta(seconds=31), 10, lease_s=30)
    assert sorted(r.id for r in again) == ["late", "legacy"]  # the lease ran out


# -- the verifier ------------------------------------------------------------------------------


@pytest.fixture
def hooked(gateway_config: dict) -> Any:
    """A gateway app whose client has a webhook receiver; background loops off (run by hand)."""
    with WebhookReceiver() as receiver:
        app = create_app({**gateway_config, "GATEWAY_API_KEYS": api_keys(receiver.url),
                          "GATEWAY_RECOVER_AFTER_S": 0.0, "GATEWAY_DEADLINE_S": 3.0})
        yield app, receiver
        shutdown(app)


def deliver_all(app: Flask) -> None:
    app.extensions["trace30.webhooks"].deliver_due()


def sweep_until_settled(app: Flask, vid: str, timeout_s: float = 20) -> dict:
    """Run the sweeper's passes (as its thread would) until ``vid`` settles."""
    end = time.monotonic() + timeout_s
    loop = RetryLoop(verifier_of(app))
    while time.monotonic() < end:
        loop.run_once()
        record = verifier_of(app).evidence.get(vid)
        if record is not None and record.state == "settled":
            return verifier_of(app).view(record)
        time.sleep(0.2)
    raise AssertionError(f"{vid} did not settle")


@pytest.mark.slow
def test_a_blip_of_the_evidence_log_while_settling_is_recovered_with_one_webhook(
        hooked: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Finding 1: the settling write fails; the caller still gets 202 (the work was accepted),
    the sweeper settles it past its deadline, and exactly one webhook reports it."""
    app, receiver = hooked
    evidence = verifier_of(app).evidence
    real = evidence.transaction
    failures = []

    def blip() -> Any:
        if not failures:
            failures.append(1)
            raise sa.exc.OperationalError("COMMIT", {}, Exception("server closed the connection"))
        return real()

    monkeypatch.setattr(evidence, "transaction", blip)
    resp = post(app.test_client(), GOOD, wait=10)
    assert resp.status_code == 202, resp.get_json()
    vid = resp.get_json()["id"]
    assert resp.headers["Location"] == f"/v1/verifications/{vid}"
    assert evidence.get(vid).state == "running"
    settled = sweep_until_settled(app, vid)
    assert settled["verdict"] == "verified"
    deliver_all(app)
    receiver.wait_for(1, timeout_s=10)
    assert completed_hooks(receiver) == {vid: 1}
    # a second sweep neither runs it again nor sends it twice
    assert RetryLoop(verifier_of(app)).run_once() == 0
    deliver_all(app)
    assert completed_hooks(receiver) == {vid: 1}


def test_an_identical_resubmission_while_running_answers_202_with_location(
        client: Any, suite: Any) -> None:
    """Finding 3: the same body again while the first runs was a 500 (TypeError)."""
    suite.configure("vies-simulator", latency_ms=1500)
    try:
        first = post(client, GOOD, wait=0.2)
        again = post(client, GOOD, wait=0.2)
    finally:
        suite.restore("vies-simulator")
    assert first.status_code == 202
    assert again.status_code == 202, again.get_json()
    body = again.get_json()
    assert body["id"] == first.get_json()["id"]
    assert body["state"] == "running" and body["items"] is None
    assert again.headers["Location"] == f"/v1/verifications/{body['id']}"
    assert again.headers["Content-Type"] == "application/json"


@pytest.mark.slow
def test_a_lock_left_by_a_dead_process_is_taken_over(gateway: Flask, client: Any) -> None:
    """Finding 3: after a killed worker, retries answered 500 until the lock expired."""
    verifier = verifier_of(gateway)
    from services.gateway import submissions

    sub = submissions.normalise(GOOD)
    fp = submissions.fingerprint(sub, "default")
    assert verifier.cache.lead(fp, "ver_of_a_dead_process") is None  # it died right after
    started = time.monotonic()
    resp = post(client, GOOD, wait=10)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["verdict"] == "verified"
    assert resp.get_json()["id"] != "ver_of_a_dead_process"
    # taken over after a short grace, not after the caller's whole wait of 10 s
    assert time.monotonic() - started < 8


def test_a_running_verification_of_a_killed_process_is_run_again_by_another(
        gateway_config: dict, database_url: str) -> None:
    """Finding 1: a gateway worker killed mid-verification left it running forever. Two
    processes' sweepers find it; one runs it; its 202 gets exactly one webhook."""
    with WebhookReceiver() as receiver:
        config = {**gateway_config, "DATABASE_URL": database_url,
                  "GATEWAY_API_KEYS": api_keys(receiver.url), "GATEWAY_RECOVER_AFTER_S": 0.0,
                  "GATEWAY_DEADLINE_S": 3.0}
        dead, first, second = create_app(config), create_app(config), create_app(config)
        try:
            # The dead process wrote the running record and promised a 202, then died.
            v = verifier_of(dead)
            from services.gateway import submissions

            sub = submissions.normalise(submission(trader_id="killed-mid-flight"))
            record = make_record("ver_killed", trader_id="killed-mid-flight", state="running",
                                 verdict=None, settled_at=None, checked_at=None,
                                 fingerprint=submissions.fingerprint(sub, "default"),
                                 created_at=T0, next_retry_at=T0)
            v.evidence.save(record, private_submission=sub)
            assert v.evidence.request_notification("ver_killed")
            shutdown(dead)
            loops = [RetryLoop(verifier_of(first)), RetryLoop(verifier_of(second))]
            from concurrent.futures import ThreadPoolExecutor

            with ThreadPoolExecutor(2) as pool:
                runs = list(pool.map(lambda loop: loop.run_once(), loops))
            assert sorted(runs) == [0, 1]
            settled = verifier_of(first).evidence.get("ver_killed")
            assert settled.state == "settled" and settled.verdict == "verified"
            deliver_all(first)
            receiver.wait_for(1, timeout_s=10)
            assert completed_hooks(receiver) == {"ver_killed": 1}
        finally:
            shutdown(first)
            shutdown(second)


def test_one_record_that_does_not_unseal_does_not_stop_the_sweeper(
        hooked: Any, caplog: pytest.LogCaptureFixture) -> None:
    app, _ = hooked
    evidence = verifier_of(app).evidence
    other_key = Sealer(Fernet.generate_key().decode())
    good = submission(trader_id="good-one")
    for vid, trader in (("ver_bad", "bad-one"), ("ver_good", "good-one")):
        evidence.save(make_record(vid, trader_id=trader, verdict="pending",
                                  next_retry_at=T0, attempts=1),
                      private_submission={**good, "trader_id": trader})
    with evidence.engine.begin() as conn:  # sealed with a key this deployment does not hold
        conn.execute(sa.text("UPDATE verifications SET sealed_submission = :s "
                             "WHERE id = 'ver_bad'"), {"s": other_key.seal(good)})
    with caplog.at_level(logging.ERROR):
        assert RetryLoop(verifier_of(app)).run_once() == 1
    assert evidence.get("ver_good").verdict == "verified"
    assert evidence.get("ver_bad").verdict == "pending"
    assert any(getattr(r, "verification", None) == "ver_bad" for r in caplog.records)
    # the API says why it cannot re-verify that trader: 409, like the dashboard
    resp = app.test_client().post("/v1/traders/bad-one/reverify", headers=OPS)
    assert resp.status_code == 409
    assert resp.headers["Content-Type"] == "application/problem+json"


@pytest.fixture
def pg_through_proxy() -> Any:
    """A PostgreSQL schema of this test's own, reached through a :class:`TcpProxy`."""
    from tests.gateway.evidence_fixtures import PG_URL, pg_schema

    with pg_schema() as schema, TcpProxy(sa.make_url(PG_URL).port or 5432) as proxy:
        url = sa.make_url(PG_URL).set(port=proxy.port).render_as_string(hide_password=False)
        yield proxy, f"{url}?options=-csearch_path%3D{schema}"


def test_an_outage_of_the_evidence_log_is_503_with_retry_after(
        gateway_config: dict, pg_through_proxy: Any) -> None:
    """Finding 6: a database outage was a 500 'An unexpected error occurred'; and once the
    database is back, the same requests answer again."""
    proxy, url = pg_through_proxy
    app = create_app({**gateway_config, "DATABASE_URL": url})
    client = app.test_client()
    try:
        proxy.cut()
        for resp in (client.get("/v1/verifications/abc", headers=ONBOARDING),
                     client.get("/v1/traders/abc", headers=ONBOARDING),
                     post(client, GOOD, wait=5)):
            assert resp.status_code == 503, resp.get_data(as_text=True)
            assert resp.headers["Content-Type"] == "application/problem+json"
            assert int(resp.headers["Retry-After"]) > 0
            assert "Traceback" not in resp.get_data(as_text=True)
        assert client.get("/readyz").status_code == 503
        proxy.restore()
        assert post(client, GOOD, wait=10).get_json()["verdict"] == "verified"
    finally:
        shutdown(app)
