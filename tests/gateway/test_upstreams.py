"""``ServiceClient.call``: the service's result as it is, or the gateway's own typed answer
(never an exception, never something the verdict rules cannot read)."""

from __future__ import annotations

import time

import pytest
import requests
import responses

from services.gateway.upstreams import ServiceClient

URL = "http://127.0.0.1:9/v1/vat/check"


@pytest.fixture
def client() -> ServiceClient:
    return ServiceClient("vat", URL, token="t", connect_timeout_s=0.5, read_timeout_s=1.0)


def call(client: ServiceClient) -> dict:
    return client.call({"vat_number": "DE100"}, deadline=time.monotonic() + 5,
                       request_id="req-1")


@responses.activate
def test_a_result_comes_back_as_the_service_gave_it(client: ServiceClient) -> None:
    result = {"status": "valid", "vat_number": "DE100", "checked_at": "2026-01-01T00:00:00Z"}
    responses.post(URL, json=result)
    assert call(client) == result
    sent = responses.calls[0].request
    assert sent.headers["Authorization"] == "Bearer t"
    assert sent.headers["X-Request-ID"] == "req-1"


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"no": "status"}',
                                  b'{"status": 3}', b"null"])
@responses.activate
def test_a_200_that_is_no_answer_is_unavailable(client: ServiceClient, body: bytes) -> None:
    responses.post(URL, body=body, content_type="application/json")
    answer = call(client)
    assert answer == {"status": "unavailable", "error": {
        "code": "SERVICE_BAD_RESPONSE", "retryable": True, "message": "Unreadable answer."}}


@responses.activate
def test_a_400_is_input_invalid_with_the_fields(client: ServiceClient) -> None:
    responses.post(URL, status=400, content_type="application/problem+json",
                   json={"status": 400, "detail": "Invalid vat_number",
                         "errors": {"vat_number": ["Too long."]}})
    assert call(client) == {"status": "input_invalid",
                            "errors": {"vat_number": ["Too long."]},
                            "detail": "Invalid vat_number"}


@responses.activate
def test_a_400_without_a_problem_document_is_input_invalid_naming_nothing(
        client: ServiceClient) -> None:
    responses.post(URL, status=400, body=b"<html>")
    assert call(client) == {"status": "input_invalid", "errors": {}, "detail": None}


@pytest.mark.parametrize(("fault", "code"), [
    (requests.ConnectTimeout("slow"), "SERVICE_TIMEOUT"),
    (requests.ReadTimeout("slow"), "SERVICE_TIMEOUT"),
    (requests.ConnectionError("refused"), "SERVICE_UNREACHABLE"),
])
@responses.activate
def test_a_transport_fault_is_unavailable(client: ServiceClient, fault: Exception,
                                          code: str) -> None:
    responses.post(URL, body=fault)
    answer = call(client)
    assert answer["status"] == "unavailable" and answer["error"]["code"] == code
    assert answer["error"]["retryable"] is True


@responses.activate
def test_a_5xx_is_unavailable_naming_the_status(client: ServiceClient) -> None:
    responses.post(URL, status=503, json={"status": 503})
    assert call(client)["error"]["code"] == "SERVICE_HTTP_503"


def test_no_time_left_asks_nothing(client: ServiceClient) -> None:
    with responses.RequestsMock() as mock:  # any request would fail the test
        answer = client.call({}, deadline=time.monotonic() - 1)
        assert len(mock.calls) == 0
    assert answer["error"]["code"] == "GATEWAY_DEADLINE"
