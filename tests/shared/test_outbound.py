"""shared.outbound: what fails before a request leaves is NotSent; the rest is the caller's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests
from flask import Flask

from shared import errors, outbound
from shared.errors import ConfigError
from shared.outbound import NotSent
from tests.conftest import free_port


@pytest.fixture
def session() -> Iterator[requests.Session]:
    s = requests.Session()
    yield s
    s.close()


@pytest.mark.parametrize(("url", "kwargs"), [
    ("http://127.0.0.1:{port}/x", {"headers": {"X-Name": "Müller €"}}),  # not latin-1
    ("http://127.0.0.1:{port}/x", {"json": {"amount": float("nan")}}),
    ("http://127.0.0.1:{port}/x", {"headers": {"X-Name": "a\r\nInjected: 1"}}),
    ("htp://127.0.0.1:{port}/x", {}),
    ("http://exa mple.com/x", {}),
    ("127.0.0.1:{port}/x", {}),
])
def test_a_request_that_cannot_leave_is_not_sent(session: requests.Session, url: str,
                                                 kwargs: dict) -> None:
    with pytest.raises(NotSent) as refused:
        outbound.send(session, "POST", url.format(port=free_port()), timeout=(0.5, 0.5),
                      what="the test upstream", **kwargs)
    assert refused.value.fields == {}
    assert "the test upstream" in str(refused.value)
    assert "Müller" not in str(refused.value)


def test_an_upstream_that_does_not_answer_is_the_callers_to_translate(
        session: requests.Session) -> None:
    with pytest.raises(requests.ConnectionError):
        outbound.send(session, "GET", f"http://127.0.0.1:{free_port()}/x", timeout=(0.5, 0.5),
                      what="the test upstream")


def test_not_sent_with_fields_is_a_400_naming_them_else_a_500() -> None:
    app = Flask(__name__)
    errors.init_app(app)
    outbound.init_app(app, "the test upstream")

    @app.post("/fields")
    def fields() -> str:
        raise NotSent("cannot", {"trader.name": outbound.UNSENDABLE})

    @app.post("/ours")
    def ours() -> str:
        raise NotSent("cannot")

    client = app.test_client()
    resp = client.post("/fields")
    assert (resp.status_code, resp.mimetype) == (400, errors.PROBLEM_JSON)
    assert resp.get_json()["errors"] == {"trader.name": [outbound.UNSENDABLE]}
    assert "trader.name" in resp.get_json()["detail"]
    resp = client.post("/ours")
    assert (resp.status_code, resp.mimetype) == (500, errors.PROBLEM_JSON)
    assert "nothing was sent" in resp.get_json()["detail"]


@pytest.mark.parametrize("url", ["", "vies.example/x", "ftp://vies.example/x", "http://"])
def test_an_endpoint_no_request_can_go_to_stops_start_up(url: str) -> None:
    with pytest.raises(ConfigError, match="TRACE30_VIES_URL"):
        outbound.check_url(url, "VIES_URL")
