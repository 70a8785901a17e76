"""Webhooks a Standard Webhooks receiver accepts (the ``standardwebhooks`` library as the
receiver), and secret rotation with two secrets valid at once."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator

import pytest
import requests
from standardwebhooks import Webhook, WebhookVerificationError

from services.gateway.evidence import EvidenceLog
from services.gateway.signatures import (
    InvalidSignature,
    standard_headers,
    verify,
    verify_standard,
)
from services.gateway.webhooks import WebhookSender, encode_body
from services.gateway.wiring import build_webhook_sender
from shared import config
from shared.clients import parse_api_keys
from shared.errors import ConfigError
from tests.gateway.webhook_receiver import ReceivedRequest, WebhookReceiver

NEW = "whsec_" + base64.b64encode(b"the new secret, 32 bytes long...").decode()
OLD = "whsec_" + base64.b64encode(b"the old secret, rotated out soon").decode()
PLAIN = "a-secret-without-the-whsec-prefix"  # noqa: S105 (a test secret)
PAYLOAD = {"event": "verification.completed",
           "verification": {"id": "v1", "verdict": "verified", "name": "Zoë Privat-Händler"}}


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def enqueue(log: EvidenceLog, url: str, client_id: str = "shop") -> str:
    return log.enqueue_webhook(client_id=client_id, url=url, event="verification.completed",
                               payload=PAYLOAD, verification_id="v1", trader_id="trader-1",
                               tenant="default")


def lower(request: ReceivedRequest) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


def sender_for(log: EvidenceLog, session: requests.Session, secrets: object) -> WebhookSender:
    return WebhookSender(log, lambda client_id: secrets,  # type: ignore[arg-type,return-value]
                         session=session, backoff_base_s=0.02, backoff_max_s=0.05)


def test_a_standard_webhooks_library_accepts_the_delivery(
        evidence_log: EvidenceLog, session: requests.Session) -> None:
    with WebhookReceiver() as receiver:
        delivery_id = enqueue(evidence_log, receiver.url)
        assert sender_for(evidence_log, session, NEW).deliver_due() == 1
        (request,) = receiver.wait_for(1)
    headers = lower(request)
    assert headers["webhook-id"] == delivery_id == headers["trace30-delivery"]
    assert headers["trace30-signature"].startswith(f"t={headers['webhook-timestamp']},")
    assert Webhook(NEW).verify(request.body, headers) == PAYLOAD  # the library's receiver
    verify_standard(NEW, headers, request.body)  # ours, standard library only
    verify(NEW, headers["trace30-signature"], request.body)  # and the older header still


def test_a_tampered_body_or_a_wrong_secret_is_rejected_by_the_library(
        evidence_log: EvidenceLog, session: requests.Session) -> None:
    with WebhookReceiver() as receiver:
        enqueue(evidence_log, receiver.url)
        sender_for(evidence_log, session, NEW).deliver_due()
        (request,) = receiver.wait_for(1)
    headers = lower(request)
    tampered = request.body.replace(b"verified", b"rejected")
    with pytest.raises(WebhookVerificationError):
        Webhook(NEW).verify(tampered, headers)
    with pytest.raises(InvalidSignature):
        verify_standard(NEW, headers, tampered)
    with pytest.raises(WebhookVerificationError):
        Webhook(OLD).verify(request.body, headers)
    with pytest.raises(WebhookVerificationError):  # another id with the same signature
        Webhook(NEW).verify(request.body, {**headers, "webhook-id": "whd_other"})


def test_a_secret_without_the_whsec_prefix_is_its_utf8_bytes(
        evidence_log: EvidenceLog, session: requests.Session) -> None:
    with WebhookReceiver() as receiver:
        enqueue(evidence_log, receiver.url)
        sender_for(evidence_log, session, PLAIN).deliver_due()
        (request,) = receiver.wait_for(1)
    assert Webhook(PLAIN.encode()).verify(request.body, lower(request)) == PAYLOAD


def test_the_webhook_id_is_the_same_on_every_retry(
        evidence_log: EvidenceLog, session: requests.Session) -> None:
    with WebhookReceiver(fail_first=2) as receiver:
        delivery_id = enqueue(evidence_log, receiver.url)
        sender = sender_for(evidence_log, session, NEW)
        for _ in range(200):
            sender.deliver_due()
            if len(receiver.received) >= 3:
                break
            time.sleep(0.01)
        seen = receiver.wait_for(3)
    assert {lower(r)["webhook-id"] for r in seen} == {delivery_id}
    for r in seen:
        assert Webhook(NEW).verify(r.body, lower(r)) == PAYLOAD


def test_known_vector_matches_the_library() -> None:
    from datetime import UTC, datetime

    body = encode_body(PAYLOAD)
    ours = standard_headers(NEW, "whd_1", body, now=1_700_000_000)["webhook-signature"]
    theirs = Webhook(NEW).sign("whd_1", datetime.fromtimestamp(1_700_000_000, tz=UTC),
                               body.decode())
    assert ours == theirs


# -- rotation: two secrets at once ---------------------------------------------------------------


def rotating_sender(log: EvidenceLog, session: requests.Session, url: str) -> WebhookSender:
    """A sender built as the gateway builds it, from a client configured mid-rotation."""
    clients = list(parse_api_keys(json.dumps([
        {"id": "shop", "key": "k", "scopes": ["onboarding"], "webhook_url": url,
         "webhook_secret": NEW, "webhook_secret_previous": OLD}])))
    sender = build_webhook_sender(config.load({}), log, clients)
    sender.session.close()
    sender.session = session
    return sender


def test_during_a_rotation_both_secrets_sign_every_delivery(
        evidence_log: EvidenceLog, session: requests.Session) -> None:
    with WebhookReceiver() as receiver:
        enqueue(evidence_log, receiver.url)
        assert rotating_sender(evidence_log, session, receiver.url).deliver_due() == 1
        (request,) = receiver.wait_for(1)
    headers = lower(request)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert headers["trace30-signature"].count("v1=") == 2
    # a receiver that still knows only the old secret
    assert Webhook(OLD).verify(request.body, headers) == PAYLOAD
    verify(OLD, headers["trace30-signature"], request.body)
    verify_standard(OLD, headers, request.body)
    # a receiver already on the new one
    assert Webhook(NEW).verify(request.body, headers) == PAYLOAD
    verify(NEW, headers["trace30-signature"], request.body)
    # a receiver with neither
    other = "whsec_" + base64.b64encode(b"neither").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(request.body, headers)
    with pytest.raises(InvalidSignature):
        verify(other, headers["trace30-signature"], request.body)


def test_a_rotation_needs_the_new_secret_and_whsec_secrets_must_be_base64() -> None:
    def load(entry: dict) -> None:
        base = {"id": "shop", "key": "k", "scopes": ["onboarding"]}
        config.load({"TRACE30_GATEWAY_API_KEYS": json.dumps([{**base, **entry}])})

    with pytest.raises(ConfigError, match=r"TRACE30_GATEWAY_API_KEYS .*'webhook_secret_previous' "
                                          r"needs 'webhook_secret'"):
        load({"webhook_secret_previous": OLD})
    with pytest.raises(ConfigError, match=r"TRACE30_GATEWAY_API_KEYS .*must be base64"):
        load({"webhook_secret": "whsec_not*base64"})
    with pytest.raises(ConfigError, match="must be base64"):
        load({"webhook_secret": NEW, "webhook_secret_previous": "whsec_%%"})
    (client,) = parse_api_keys(json.dumps([{"id": "shop", "key": "k", "webhook_secret": NEW,
                                            "webhook_secret_previous": OLD}]))
    assert client.webhook_secrets == (NEW, OLD)


def test_a_malformed_timestamp_is_a_refused_signature_never_another_error() -> None:
    """A receiver that catches InvalidSignature answers 400, not 500, whatever the sender put
    in the timestamp (a digit outside ASCII, thousands of digits)."""
    from services.gateway.signatures import InvalidSignature, verify, verify_standard

    for stamp in ("²", "9" * 5000, "-1", ""):
        with pytest.raises(InvalidSignature):
            verify_standard("whsec_dGVzdA==", {"webhook-id": "whd_1", "webhook-timestamp": stamp,
                                               "webhook-signature": "v1,AAAA"}, b"{}")
        with pytest.raises(InvalidSignature):
            verify("whsec_test", f"t={stamp},v1=abc", b"{}")


def test_an_empty_whsec_key_is_refused() -> None:
    from services.gateway.signatures import standard_key

    with pytest.raises(ValueError, match="key"):
        standard_key("whsec_")
