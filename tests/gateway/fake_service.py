"""A stand-in for one trace30 service in the gateway's tests: the webhook receiver's real HTTP
server on a free loopback port (:mod:`tests.gateway.webhook_receiver`), answering every POST
with the status, body and content type it is told, after ``delay_s``, and recording what it
got::

    with FakeService(status=503, body=b'{"status": 503}') as service:
        ...  # call service.url
        assert service.received[0].headers["Authorization"] == "Bearer t"
"""

from __future__ import annotations

from tests.gateway.webhook_receiver import WebhookReceiver


class FakeService(WebhookReceiver):
    """A service's check endpoint; a context manager that starts and stops it."""

    path = "/v1/vat/check"

    def __init__(self, *, status: int = 200, body: bytes = b'{"status": "valid"}',
                 content_type: str = "application/json", delay_s: float = 0.0) -> None:
        super().__init__(status=status, body=body, content_type=content_type, delay_s=delay_s)
