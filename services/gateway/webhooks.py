"""Webhooks: how they are signed, how a receiver checks them, and how they are delivered.

When a verification settles after the client stopped waiting (``verification.completed``), or a
trader's verdict changes (``verdict.changed``), the gateway POSTs the result to the client's
webhook URL. The delivery is first written to the evidence log's outbox
(:meth:`~services.gateway.evidence.EvidenceLog.enqueue_webhook`), so it survives a restart;
:class:`WebhookWorker` threads (one per gateway process) send it with :class:`WebhookSender`.

The requests are signed as :mod:`services.gateway.signatures` describes (``Trace30-Signature``,
``Trace30-Event``, ``Trace30-Delivery``); receivers check them with its ``verify``, which needs
nothing but the standard library.

A delivery that does not get a 2xx (an error status, a redirect, a timeout, a refused
connection) is retried with :func:`shared.upstream.backoff_s` (``TRACE30_WEBHOOK_BACKOFF_BASE_S``
doubling up to ``TRACE30_WEBHOOK_BACKOFF_MAX_S``) until ``TRACE30_WEBHOOK_MAX_ATTEMPTS``, then it
is marked failed. Each attempt is recorded in the evidence log. The payload is never logged: it
holds personal data.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from services.gateway.evidence import EvidenceLog, WebhookDelivery
from services.gateway.signatures import (  # noqa: F401 (re-exported for the sender's callers)
    DELIVERY_HEADER,
    EVENT_HEADER,
    SIGNATURE_HEADER,
    InvalidSignature,
    Secrets,
    StaleSignature,
    WebhookSignatureError,
    signature_header,
    verify,
)
from shared import tracing
from shared.upstream import backoff_s

log = logging.getLogger(__name__)

USER_AGENT = "trace30-webhooks/0.1"


def encode_body(payload: dict[str, Any]) -> bytes:
    """The bytes sent (and signed) for ``payload``: compact UTF-8 JSON.

    >>> encode_body({"trader": "Müller", "n": 1})
    b'{"trader":"M\\xc3\\xbcller","n":1}'
    """
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookSender:
    """Sends due webhooks from the evidence log's outbox, one at a time, recording each attempt.

    Several senders (threads or processes) may run on one database: each delivery is leased
    to one sender before it is sent (:meth:`EvidenceLog.claim_due_webhooks`). The lease
    (``lease_s``, by default four times the timeout and at least a minute) outlasts one send;
    a sender that dies mid-send leaves the delivery to be sent again once it runs out.
    """

    def __init__(
        self,
        log: EvidenceLog,
        secret_for: Callable[[str], Secrets | None],
        *,
        session: requests.Session | None = None,
        timeout_s: float = 5,
        max_attempts: int = 8,
        backoff_base_s: float = 5,
        backoff_max_s: float = 3600,
        lease_s: float | None = None,
    ) -> None:
        """``secret_for(client_id)`` gives the client's webhook secret(s), None if it has none."""
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.log = log
        self.secret_for = secret_for
        self._own_session = session is None
        self.session = session or requests.Session()
        self.timeout_s = timeout_s
        self.max_attempts = max_attempts
        self.backoff_base_s = backoff_base_s
        self.backoff_max_s = backoff_max_s
        self.lease_s = lease_s if lease_s is not None else max(60.0, 4 * timeout_s)

    def close(self) -> None:
        """Close the HTTP session if the sender made it (one handed in is the caller's)."""
        if self._own_session:
            self.session.close()

    def deliver_due(self, limit: int = 50) -> int:
        """Send up to ``limit`` due deliveries; return how many were attempted.

        Deliveries are claimed one at a time, so a delivery is leased only while it is sent
        and a slow receiver does not hold back deliveries another sender could make.
        """
        attempted = 0
        while attempted < limit:
            claimed = self.log.claim_due_webhooks(datetime.now(UTC), 1, self.lease_s)
            if not claimed:
                break
            # its log lines carry the delivery id, which its receiver sees too
            with tracing.background("webhook.deliver", request_id=claimed[0].id):
                self.attempt(claimed[0])
            attempted += 1
        return attempted

    def attempt(self, delivery: WebhookDelivery) -> bool:
        """Make one attempt at ``delivery`` (already leased) and record it; True if delivered."""
        number = len(delivery.attempts) + 1
        started_at = datetime.now(UTC)
        status_code, error, duration_ms = self._post(delivery)
        delivered = status_code is not None and 200 <= status_code < 300
        next_attempt_at = None
        if not delivered and number < self.max_attempts:
            delay = backoff_s(number, self.backoff_base_s, self.backoff_max_s)
            next_attempt_at = datetime.now(UTC) + timedelta(seconds=delay)
        self.log.record_attempt(
            delivery.id,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
            delivered=delivered,
            next_attempt_at=next_attempt_at,
            at=started_at,
        )
        fields = {
            "delivery_id": delivery.id,
            "event": delivery.event,
            "client_id": delivery.client_id,
            "status_code": status_code,
            "error": error,
            "attempt": number,
            "duration_ms": round(duration_ms, 1),
        }
        if delivered:
            log.info("webhook delivered", extra=fields)
        elif next_attempt_at is not None:
            log.warning("webhook attempt failed; will retry",
                        extra={**fields, "next_attempt_at": next_attempt_at.isoformat()})
        else:
            log.error("webhook failed; giving up", extra={**fields, "attempts": number})
        return delivered

    def _post(self, delivery: WebhookDelivery) -> tuple[int | None, str | None, float]:
        """POST the delivery; (status code, error, milliseconds). Never raises for the network."""
        secret = self.secret_for(delivery.client_id)
        if not secret:
            return None, "no webhook secret configured for the client", 0.0
        body = encode_body(delivery.payload)  # serialised once: these bytes are signed and sent
        headers = {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: signature_header(secret, body),
            EVENT_HEADER: delivery.event,
            DELIVERY_HEADER: delivery.id,
            "User-Agent": USER_AGENT,
        }
        started = time.perf_counter()
        try:
            # No redirects: a webhook URL that moved is the client's to fix, and following one
            # would send signed personal data to an address nobody configured.
            response = self.session.post(
                delivery.url, data=body, headers=headers, allow_redirects=False, stream=True,
                timeout=(self.timeout_s, self.timeout_s),
            )
        except requests.Timeout:
            return None, "timeout", _ms_since(started)
        except requests.RequestException as e:
            # the class name only: an exception's text can repeat the URL and its credentials
            return None, f"request failed: {type(e).__name__}", _ms_since(started)
        response.close()  # the body is not needed
        code = response.status_code
        return code, (None if 200 <= code < 300 else f"HTTP {code}"), _ms_since(started)


def _ms_since(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class WebhookWorker(threading.Thread):
    """A daemon thread that runs :meth:`WebhookSender.deliver_due` every ``poll_s`` seconds.

    A pass that fails (the database is down, a bug) is logged and the loop goes on, waiting
    longer after each failure in a row (up to 30 s). A full pass is followed at once by the
    next one. :meth:`stop` ends the loop after the current pass.
    """

    def __init__(self, sender: WebhookSender, *, poll_s: float = 1.0, limit: int = 50) -> None:
        super().__init__(name="trace30-webhooks", daemon=True)
        self.sender = sender
        self.poll_s = poll_s
        self.limit = limit
        self._stopping = threading.Event()

    def run(self) -> None:
        """Deliver until stopped."""
        failures = 0
        while not self._stopping.is_set():
            try:
                attempted = self.sender.deliver_due(self.limit)
                failures = 0
            except Exception:  # the worker must outlive a failing pass; the error is logged
                failures += 1
                log.exception("webhook delivery pass failed", extra={"failures": failures})
                self._stopping.wait(min(30.0, self.poll_s * 2**failures))
                continue
            if attempted < self.limit:
                self._stopping.wait(self.poll_s)

    def stop(self, timeout_s: float | None = None) -> None:
        """Ask the loop to end and wait up to ``timeout_s`` for it (None: until it has)."""
        self._stopping.set()
        if self.is_alive() and threading.current_thread() is not self:
            self.join(timeout_s)
