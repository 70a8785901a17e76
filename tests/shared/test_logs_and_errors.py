"""JSON logs with request ids, and problem+json for every error, including unhandled ones."""

from __future__ import annotations

import json
import logging

import pytest
from flask import Flask

from shared import context
from shared.errors import BadRequest
from shared.factory import create_base_app
from shared.logs import JsonFormatter


@pytest.fixture
def app(store) -> Flask:
    app, _ = create_base_app(__name__, "demo", {"TESTING": False, "SANDBOX": True,
                                                "REDIS_STORE": store}, title="demo")

    @app.get("/boom")
    def boom():  # noqa: ANN202
        raise RuntimeError("secret internals")

    @app.get("/bad")
    def bad():  # noqa: ANN202
        raise BadRequest("Nope.", errors={"iban": ["Too short."]})

    return app


def test_unhandled_error_is_a_500_problem_without_traceback(
    app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    resp = app.test_client().get("/boom")
    assert resp.status_code == 500
    assert resp.content_type == "application/problem+json"
    text = resp.get_data(as_text=True)
    assert "secret internals" not in text and "Traceback" not in text
    assert any(r.exc_info for r in caplog.records if r.levelname == "ERROR")


def test_trace30_error_carries_field_errors(app: Flask) -> None:
    resp = app.test_client().get("/bad")
    body = resp.get_json()
    assert resp.status_code == 400
    assert body["errors"] == {"iban": ["Too short."]}
    assert body["detail"] == "Nope."
    assert body["instance"] == "/bad"
    assert body["request_id"] == resp.headers["X-Request-ID"]


def test_unsafe_request_id_is_replaced(app: Flask) -> None:
    resp = app.test_client().get("/healthz", headers={"X-Request-ID": "a b <c>"})
    assert resp.headers["X-Request-ID"] != "a b <c>"
    assert len(resp.headers["X-Request-ID"]) == 32


def test_json_formatter_adds_request_id_and_extras(app: Flask) -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello %s", ("you",), None)
    record.country = "DE"
    with context.bound("rid-1"):
        line = json.loads(JsonFormatter("demo").format(record))
    assert line["msg"] == "hello you"
    assert line["request_id"] == "rid-1"
    assert line["country"] == "DE"
    assert line["service"] == "demo"


def test_readyz_fails_when_redis_does_not_answer() -> None:
    app, _ = create_base_app(__name__, "demo", {"SANDBOX": True,
                                                "REDIS_URL": "redis://127.0.0.1:1/0"},
                             title="demo")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert resp.content_type == "application/problem+json"
    assert resp.get_json()["errors"] == {"redis": ["failing"]}
