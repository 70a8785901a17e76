"""``ServiceClient.call``: the service's result as it is, or the gateway's own typed answer
(never an exception, never something the verdict rules cannot read)."""

from __future__ import annotations

import json
import time

import pytest
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ProtocolError,
    ReadTimeoutError,
)

from services.gateway.upstreams import ServiceClient
from tests.conftest import free_port
from tests.gateway.fake_service import FakeService


def client_of(url: str, read_timeout_s: float = 1.0) -> ServiceClient:
    return ServiceClient("vat", url, token="t", connect_timeout_s=0.5,
                         read_timeout_s=read_timeout_s)


def call(client: ServiceClient) -> dict:
    return client.call({"vat_number": "DE100"}, deadline=time.monotonic() + 5,
                       request_id="req-1")


def test_a_result_comes_back_as_the_service_gave_it() -> None:
    result = {"status": "valid", "vat_number": "DE100", "checked_at": "2026-01-01T00:00:00Z"}
    with FakeService(body=json.dumps(result).encode()) as service:
        assert call(client_of(service.url)) == result
    sent = service.received[0]
    assert sent.path == "/v1/vat/check"
    assert sent.headers["Authorization"] == "Bearer t"
    assert sent.headers["X-Request-ID"] == "req-1"
    assert sent.headers["Content-Type"] == "application/json"
    assert json.loads(sent.body) == {"vat_number": "DE100"}


def test_connections_are_kept_for_the_next_call() -> None:
    with FakeService() as service:
        client = client_of(service.url)
        for _ in range(3):
            assert call(client) == {"status": "valid"}
        assert client.pool.num_connections == 1


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"no": "status"}',
                                  b'{"status": 3}', b"null", b"\xff"])
def test_a_200_that_is_no_answer_is_unavailable(body: bytes) -> None:
    with FakeService(body=body) as service:
        answer = call(client_of(service.url))
    assert answer == {"status": "unavailable", "error": {
        "code": "SERVICE_BAD_RESPONSE", "retryable": True, "message": "Unreadable answer."}}


def test_a_400_is_input_invalid_with_the_fields() -> None:
    problem = {"status": 400, "detail": "Invalid vat_number",
               "errors": {"vat_number": ["Too long."]}}
    with FakeService(status=400, body=json.dumps(problem).encode(),
                     content_type="application/problem+json") as service:
        assert call(client_of(service.url)) == {"status": "input_invalid",
                                                "errors": {"vat_number": ["Too long."]},
                                                "detail": "Invalid vat_number"}


def test_a_400_without_a_problem_document_is_input_invalid_naming_nothing() -> None:
    with FakeService(status=400, body=b"<html>", content_type="text/html") as service:
        assert call(client_of(service.url)) == {"status": "input_invalid", "errors": {},
                                                "detail": None}


def test_a_service_slower_than_the_read_timeout_is_a_timeout() -> None:
    with FakeService(delay_s=2) as service:
        started = time.monotonic()
        answer = call(client_of(service.url, read_timeout_s=0.2))
    assert answer["status"] == "unavailable" and answer["error"]["code"] == "SERVICE_TIMEOUT"
    assert answer["error"]["retryable"] is True
    assert time.monotonic() - started < 1.5


def test_the_read_timeout_is_bounded_by_the_deadline() -> None:
    with FakeService(delay_s=2) as service:
        started = time.monotonic()
        answer = client_of(service.url, read_timeout_s=10).call(
            {"vat_number": "DE100"}, deadline=time.monotonic() + 0.3)
    assert answer["error"]["code"] == "SERVICE_TIMEOUT"
    assert time.monotonic() - started < 1.5


def test_a_refused_connection_is_unreachable() -> None:
    answer = call(client_of(f"http://127.0.0.1:{free_port()}/v1/vat/check"))
    assert answer["status"] == "unavailable"
    assert answer["error"]["code"] == "SERVICE_UNREACHABLE"
    assert "NewConnectionError" in answer["error"]["message"]


@pytest.mark.parametrize(("fault", "code"), [
    (MaxRetryError(None, "/", ConnectTimeoutError("slow")), "SERVICE_TIMEOUT"),  # type: ignore[arg-type]
    (ReadTimeoutError(None, "/", "slow"), "SERVICE_TIMEOUT"),  # type: ignore[arg-type]
    (MaxRetryError(None, "/", NewConnectionError(None, "refused")), "SERVICE_UNREACHABLE"),  # type: ignore[arg-type]
    (ProtocolError("connection aborted"), "SERVICE_UNREACHABLE"),
])
def test_a_transport_fault_is_unavailable(monkeypatch: pytest.MonkeyPatch, fault: Exception,
                                          code: str) -> None:
    client = client_of("http://127.0.0.1:9/v1/vat/check")

    def fail(*args: object, **kwargs: object) -> None:
        raise fault

    monkeypatch.setattr(client.pool, "urlopen", fail)
    answer = call(client)
    assert answer["status"] == "unavailable" and answer["error"]["code"] == code
    assert answer["error"]["retryable"] is True


def test_a_5xx_is_unavailable_naming_the_status() -> None:
    with FakeService(status=503, body=b'{"status": 503}') as service:
        assert call(client_of(service.url))["error"]["code"] == "SERVICE_HTTP_503"


def test_no_time_left_asks_nothing() -> None:
    with FakeService() as service:
        answer = client_of(service.url).call({}, deadline=time.monotonic() - 1)
    assert service.received == []
    assert answer["error"]["code"] == "GATEWAY_DEADLINE"
