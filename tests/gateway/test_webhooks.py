"""Webhook signatures (what receivers check) and delivery to a real HTTP receiver on loopback."""

# Fixtures imported by name are redefined as test arguments: that is how pytest uses them.

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterator

import pytest
import requests

from services.gateway.evidence import EvidenceLog, WebhookDelivery
from services.gateway.signatures import (
    InvalidSignature,
    StaleSignature,
    WebhookSignatureError,
    sign,
    signature_header,
    verify,
)
from services.gateway.webhooks import WebhookSender, WebhookWorker, encode_body
from tests.conftest import free_port
from tests.gateway.evidence_fixtures import SEALING_KEYS
from tests.gateway.webhook_receiver import WebhookReceiver

SECRET = "whsec_test"  # noqa: S105 (a test secret)
BODY = b'{"event":"verification.completed"}'
NOW = 1_700_000_000
PAYLOAD = {"event": "verification.completed",
           "verification": {"id": "v1", "verdict": "verified", "name": "Zoë Privat-Händler"}}


# -- signatures ----------------------------------------------------------------------------------


def test_sign_known_vector() -> None:
    expected = "3e676f269f45c30dfb0845526b47593ce7466eac1ca1a7a9cc736e654e1e37b4"
    assert sign(SECRET, NOW, BODY) == expected
    # the same, spelled out the way a receiver in another language would compute it
    assert hmac.new(SECRET.encode(), b"1700000000." + BODY, hashlib.sha256).hexdigest() == (
        expected)


def test_header_carries_timestamp_and_signature() -> None:
    header = signature_header(SECRET, BODY, now=NOW + 0.7)
    assert header == f"t={NOW},v1={sign(SECRET, NOW, BODY)}"
    before = int(time.time())
    t = int(signature_header(SECRET, BODY).split(",")[0].removeprefix("t="))
    assert before <= t <= time.time()


def test_verify_accepts_a_genuine_request() -> None:
    header = signature_header(SECRET, BODY, now=NOW)
    verify(SECRET, header, BODY, now=NOW)
    verify(SECRET, header, BODY, now=NOW + 300)  # the tolerance's edge is still fine
    verify(SECRET, header, BODY, now=NOW - 300)
    verify(SECRET, header.replace(",", ", "), BODY, now=NOW)
    verify(SECRET, signature_header(SECRET, BODY), BODY)  # the real clock


@pytest.mark.parametrize("body", [BODY + b" ", BODY.replace(b"completed", b"complete"), b""])
def test_tampered_body_is_rejected(body: bytes) -> None:
    header = signature_header(SECRET, BODY, now=NOW)
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, body, now=NOW)


def test_wrong_secret_or_changed_timestamp_is_rejected() -> None:
    header = signature_header(SECRET, BODY, now=NOW)
    with pytest.raises(InvalidSignature):
        verify("whsec_other", header, BODY, now=NOW)
    moved = header.replace(f"t={NOW}", f"t={NOW + 1}")  # a replay with a fresh timestamp
    with pytest.raises(InvalidSignature):
        verify(SECRET, moved, BODY, now=NOW + 1)


def test_stale_signature_is_rejected_after_five_minutes() -> None:
    header = signature_header(SECRET, BODY, now=NOW)
    with pytest.raises(StaleSignature, match="301 s old"):
        verify(SECRET, header, BODY, now=NOW + 301)
    with pytest.raises(StaleSignature):
        verify(SECRET, header, BODY, now=NOW + 3600)
    verify(SECRET, header, BODY, now=NOW + 3600, tolerance_s=3600)


def test_future_timestamp_beyond_tolerance_is_rejected() -> None:
    header = signature_header(SECRET, BODY, now=NOW + 301)
    with pytest.raises(StaleSignature, match="future"):
        verify(SECRET, header, BODY, now=NOW)


def test_rotation_several_signatures_and_several_secrets() -> None:
    header = signature_header(["whsec_new", "whsec_old"], BODY, now=NOW)
    assert header.count("v1=") == 2
    verify("whsec_new", header, BODY, now=NOW)  # a receiver already on the new secret
    verify("whsec_old", header, BODY, now=NOW)  # a receiver still on the old one
    with pytest.raises(InvalidSignature):
        verify("whsec_other", header, BODY, now=NOW)
    # a receiver that accepts both secrets, for a sender still signing with the old one
    verify(["whsec_new", "whsec_old"], signature_header("whsec_old", BODY, now=NOW), BODY,
           now=NOW)


@pytest.mark.parametrize("header", [
    "", "garbage", f"t={NOW}", "v1=abc", f"t=soon,v1={sign(SECRET, NOW, BODY)}",
    f"t={NOW},v0={sign(SECRET, NOW, BODY)}", f"t={NOW},v1=",
])
def test_malformed_headers_are_invalid(header: str) -> None:
    with pytest.raises(InvalidSignature):
        verify(SECRET, header, BODY, now=NOW)


def test_errors_are_value_errors_receivers_can_catch_at_once() -> None:
    assert issubclass(InvalidSignature, WebhookSignatureError)
    assert issubclass(StaleSignature, WebhookSignatureError)
    assert issubclass(WebhookSignatureError, ValueError)
    with pytest.raises(ValueError, match="empty"):
        signature_header("", BODY)


# -- delivery ------------------------------------------------------------------------------------


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def make_sender(log: EvidenceLog, session: requests.Session, **options: object) -> WebhookSender:
    settings: dict[str, object] = {"timeout_s": 2.0, "max_attempts": 5,
                                   "backoff_base_s": 0.02, "backoff_max_s": 0.05}
    settings.update(options)
    return WebhookSender(log, lambda client_id: SECRET if client_id == "shop" else None,
                         session=session, **settings)  # type: ignore[arg-type]


def enqueue(log: EvidenceLog, url: str, *, client_id: str = "shop", vid: str = "v1",
            payload: dict | None = None) -> str:
    return log.enqueue_webhook(client_id=client_id, url=url, event="verification.completed",
                               payload=payload or PAYLOAD, verification_id=vid,
                               trader_id="trader-1", tenant="default")


def only_delivery(log: EvidenceLog, vid: str = "v1") -> WebhookDelivery:
    (delivery,) = log.deliveries(vid)
    return delivery


def deliver_until_settled(sender: WebhookSender, log: EvidenceLog, vid: str = "v1",
                          timeout_s: float = 10) -> WebhookDelivery:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        sender.deliver_due()
        delivery = only_delivery(log, vid)
        if delivery.status != "pending":
            return delivery
        time.sleep(0.01)
    raise AssertionError("the delivery did not settle")


def test_delivered_first_time_with_a_valid_signature(
    evidence_log: EvidenceLog, session: requests.Session
) -> None:
    with WebhookReceiver() as receiver:
        delivery_id = enqueue(evidence_log, receiver.url)
        assert make_sender(evidence_log, session).deliver_due() == 1
        (request,) = receiver.wait_for(1)
    headers = {k.lower(): v for k, v in request.headers.items()}
    verify(SECRET, headers["trace30-signature"], request.body)  # what a receiver does
    assert json.loads(request.body) == PAYLOAD
    assert request.body == encode_body(PAYLOAD)
    assert headers["content-type"] == "application/json"
    assert headers["trace30-event"] == "verification.completed"
    assert headers["trace30-delivery"] == delivery_id
    assert headers["user-agent"] == "trace30-webhooks/0.1"
    delivery = only_delivery(evidence_log)
    assert delivery.status == "delivered" and delivery.delivered_at is not None
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery.attempts] == [
        (1, 200, None)]
    assert delivery.attempts[0]["duration_ms"] > 0
    assert delivery.attempts[0]["at"].timestamp() <= request.at  # when the attempt started
    assert make_sender(evidence_log, session).deliver_due() == 0  # nothing left to send


def test_retries_with_backoff_then_delivered(
    evidence_log: EvidenceLog, session: requests.Session
) -> None:
    with WebhookReceiver(fail_first=2) as receiver:
        delivery_id = enqueue(evidence_log, receiver.url)
        sender = make_sender(evidence_log, session, backoff_base_s=0.2, backoff_max_s=0.4)
        assert sender.deliver_due() == 1
        assert only_delivery(evidence_log).status == "pending"
        assert sender.deliver_due() == 0  # not due yet: the backoff holds it back
        delivery = deliver_until_settled(sender, evidence_log)
        requests_seen = receiver.wait_for(3)
    assert delivery.status == "delivered"
    assert [(a["number"], a["status_code"], a["error"]) for a in delivery.attempts] == [
        (1, 500, "HTTP 500"), (2, 500, "HTTP 500"), (3, 200, None)]
    ats = [a["at"] for a in delivery.attempts]
    assert ats == sorted(ats)
    gaps = [b.at - a.at for a, b in itertools.pairwise(requests_seen)]
    assert gaps[0] >= 0.1 and gaps[1] >= 0.2  # at least half of 0.2 s, then of 0.4 s
    assert {r.headers["Trace30-Delivery"] for r in requests_seen} == {delivery_id}
    assert {r.body for r in requests_seen} == {encode_body(PAYLOAD)}
    for r in requests_seen:
        verify(SECRET, r.headers["Trace30-Signature"], r.body)


def test_gives_up_after_max_attempts(
    evidence_log: EvidenceLog, session: requests.Session, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="services.gateway.webhooks")
    with WebhookReceiver(fail_first=100, fail_status=503) as receiver:
        delivery_id = enqueue(evidence_log, receiver.url)
        sender = make_sender(evidence_log, session, max_attempts=3)
        delivery = deliver_until_settled(sender, evidence_log)
        assert sender.deliver_due() == 0
        time.sleep(0.1)
        assert sender.deliver_due() == 0
        assert len(receiver.received) == 3
    assert delivery.status == "failed" and delivery.next_attempt_at is None
    assert [a["status_code"] for a in delivery.attempts] == [503, 503, 503]
    (gave_up,) = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert gave_up.delivery_id == delivery_id and gave_up.attempt == 3  # type: ignore[attr-defined]
    assert gave_up.status_code == 503  # type: ignore[attr-defined]
    logged = " ".join(str(vars(r)) for r in caplog.records)
    assert "Zoë" not in logged and "verified" not in logged  # the payload is never logged


def test_a_hanging_receiver_hits_the_timeout(
    evidence_log: EvidenceLog, session: requests.Session
) -> None:
    with WebhookReceiver(hang_first=1, hang_s=10) as receiver:
        enqueue(evidence_log, receiver.url)
        sender = make_sender(evidence_log, session, timeout_s=0.3, backoff_base_s=5,
                             backoff_max_s=10)
        started = time.monotonic()
        assert sender.deliver_due() == 1
        assert time.monotonic() - started < 3
    delivery = only_delivery(evidence_log)
    (attempt,) = delivery.attempts
    assert attempt["status_code"] is None and attempt["error"] == "timeout"
    assert 250 <= attempt["duration_ms"] < 3000
    assert delivery.status == "pending" and delivery.next_attempt_at is not None


def test_unreachable_receiver_redirect_and_missing_secret_are_failed_attempts(
    evidence_log: EvidenceLog, session: requests.Session
) -> None:
    enqueue(evidence_log, f"http://127.0.0.1:{free_port()}/hook", vid="refused")
    enqueue(evidence_log, "http://127.0.0.1:9/hook", client_id="no-secret", vid="unsigned")
    with WebhookReceiver(fail_first=1, fail_status=302) as receiver:
        enqueue(evidence_log, receiver.url, vid="moved")
        sender = make_sender(evidence_log, session, backoff_base_s=5, backoff_max_s=10)
        assert sender.deliver_due() == 3
        assert len(receiver.received) == 1  # the redirect was not followed
    errors = {vid: only_delivery(evidence_log, vid).attempts[0]["error"]
              for vid in ("refused", "unsigned", "moved")}
    assert errors == {"refused": "request failed: ConnectionError",
                      "unsigned": "no webhook secret configured for the client",
                      "moved": "HTTP 302"}
    assert all(only_delivery(evidence_log, vid).status == "pending" for vid in errors)


@pytest.mark.slow
def test_parallel_senders_never_send_a_delivery_twice(database_url: str) -> None:
    logs = [EvidenceLog(database_url, SEALING_KEYS) for _ in range(2)]
    logs[0].migrate()
    sessions = [requests.Session() for _ in logs]
    try:
        with WebhookReceiver(delay_s=0.005) as receiver:
            ids = {enqueue(logs[0], receiver.url, vid=f"v{n}") for n in range(40)}
            senders = [make_sender(log, s) for log, s in zip(logs, sessions, strict=True)]
            counts = [0, 0]
            barrier = threading.Barrier(2)

            def run(n: int) -> None:
                barrier.wait()
                while (done := senders[n].deliver_due(limit=5)) > 0:
                    counts[n] += done

            threads = [threading.Thread(target=run, args=(n,)) for n in range(2)]
            for t in threads:
                t.start()
            for t in threads:
                t.join(60)
            received = Counter(r.headers["Trace30-Delivery"] for r in receiver.received)
        assert set(received) == ids and set(received.values()) == {1}
        assert sum(counts) == 40 and min(counts) > 0  # both senders did part of the work
        for n in range(40):
            delivery = only_delivery(logs[0], f"v{n}")
            assert delivery.status == "delivered" and len(delivery.attempts) == 1
    finally:
        for log, s in zip(logs, sessions, strict=True):
            s.close()
            log.close()


def test_worker_delivers_in_the_background_and_stops(
    evidence_log: EvidenceLog, session: requests.Session
) -> None:
    with WebhookReceiver() as receiver:
        worker = WebhookWorker(make_sender(evidence_log, session), poll_s=0.02)
        worker.start()
        try:
            enqueue(evidence_log, receiver.url)
            receiver.wait_for(1)
        finally:
            worker.stop(timeout_s=5)
        assert not worker.is_alive() and worker.daemon
    deadline = time.monotonic() + 5
    while only_delivery(evidence_log).status != "delivered" and time.monotonic() < deadline:
        time.sleep(0.01)
    assert only_delivery(evidence_log).status == "delivered"


class FlakySender:
    """A sender whose first passes fail, as when the database is briefly unreachable."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.passes = 0

    def deliver_due(self, limit: int = 50) -> int:
        self.passes += 1
        if self.passes <= self.failures:
            raise RuntimeError("database unreachable")
        return 0


def test_worker_survives_a_failing_pass(caplog: pytest.LogCaptureFixture) -> None:
    sender = FlakySender(failures=2)
    worker = WebhookWorker(sender, poll_s=0.01)  # type: ignore[arg-type]
    worker.start()
    try:
        deadline = time.monotonic() + 5
        while sender.passes < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        worker.stop(timeout_s=5)
    assert sender.passes >= 4 and not worker.is_alive()
    failed = [r for r in caplog.records if r.getMessage() == "webhook delivery pass failed"]
    assert len(failed) == 2 and failed[0].exc_info is not None
