"""``/metrics`` (shared/metrics.py): what moves after real requests, who may read it, labels
without personal data, and several processes adding up in multiprocess mode."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from services.vat import create_app
from shared.errors import ConfigError
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError
from tests.conftest import AUTH, INTERNAL_TOKEN
from tests.multiprocess import together
from tests.shared import metrics_workers
from tests.vat.fakes import FakeVies

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

NUMBER = "DE136695976"


def samples(text: str) -> Samples:
    """Every sample of an exposition, by name and labels."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: Samples, name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def vat_app(store: Store, vies: FakeVies | None = None, **config: object) -> Flask:
    return create_app({
        "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store, "VIES": vies or FakeVies(), "VIES_REST_FALLBACK": False,
        "VIES_DEADLINE_S": 1.0, "VIES_RETRY_BASE_S": 0.01, "VIES_RETRY_MAX_S": 0.02,
        "VIES_STATUS_TTL_S": 0, **config})


def scrape(client: FlaskClient) -> Samples:
    response = client.get("/metrics")
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.content_type.startswith("text/plain; version=0.0.4")
    return samples(response.get_data(as_text=True))


@pytest.fixture
def client(store: Store) -> FlaskClient:
    return vat_app(store).test_client()


def test_requests_are_counted_by_url_rule_and_status(client: FlaskClient) -> None:
    before = scrape(client)
    client.get("/healthz")
    client.get("/healthz")
    client.post("/v1/vat/check", json={"vat_number": NUMBER})  # no token: 401
    client.get("/traders/jane.doe@example.com")  # no such route: 404
    after = scrape(client)

    def moved(route: str, status: str, method: str = "GET") -> float:
        labels = {"service": "vat", "method": method, "route": route, "status": status}
        return (value(after, "trace30_http_requests_total", **labels)
                - value(before, "trace30_http_requests_total", **labels))

    assert moved("/healthz", "200") == 2
    assert moved("/v1/vat/check", "401", "POST") == 1
    assert moved("<unmatched>", "404") == 1
    latency = {"service": "vat", "method": "GET", "route": "/healthz"}
    assert (value(after, "trace30_http_request_duration_seconds_count", **latency)
            - value(before, "trace30_http_request_duration_seconds_count", **latency)) == 2
    assert value(after, "trace30_http_request_duration_seconds_bucket", le="+Inf",
                 **latency) == value(after, "trace30_http_request_duration_seconds_count",
                                     **latency)


def test_upstream_checks_and_the_cache_are_counted(store: Store) -> None:
    client = vat_app(store).test_client()
    before = scrape(client)
    for _ in range(2):  # the second is answered from the cache
        r = client.post("/v1/vat/check", json={"vat_number": NUMBER}, headers=AUTH)
        assert r.status_code == 200 and r.get_json()["status"] == "valid"
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    check = {"upstream": "vies", "key": "DE"}
    assert moved("trace30_upstream_checks_total", **check, outcome="answered", code="") == 1
    assert moved("trace30_upstream_attempts_total", **check, outcome="answered") == 1
    assert moved("trace30_upstream_check_duration_seconds_count", **check) == 1
    assert moved("trace30_upstream_slot_wait_seconds_count", **check) == 1
    assert moved("trace30_cache_lookups_total", cache="vat", result="miss") >= 1
    assert moved("trace30_cache_lookups_total", cache="vat", result="hit") == 1
    assert value(after, "trace30_breaker_state", breaker="vies", key="DE") == 0


def test_an_outage_is_counted_with_its_code_and_opens_the_breaker(store: Store) -> None:
    vies = FakeVies()
    vies.script(NUMBER, UpstreamError("down", Fault.OUTAGE, code="MS_UNAVAILABLE"))
    client = vat_app(store, vies, VIES_BREAKER_THRESHOLD=1).test_client()
    before = scrape(client)
    calls = []
    for _ in range(2):  # the first opens the circuit, the second is refused by it
        r = client.post("/v1/vat/check", json={"vat_number": NUMBER}, headers=AUTH)
        assert r.get_json()["status"] == "unavailable"
        calls.append(len(vies.calls))
    after = scrape(client)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    check = {"upstream": "vies", "key": "DE"}
    assert moved("trace30_upstream_checks_total", **check, outcome="outage",
                 code="MS_UNAVAILABLE") == 1
    # the first check retried within its deadline: every call is an attempt
    assert moved("trace30_upstream_attempts_total", **check, outcome="outage") == calls[0]
    assert moved("trace30_upstream_checks_total", **check, outcome="circuit_open",
                 code="MS_UNAVAILABLE") == 1
    assert moved("trace30_breaker_opened_total", breaker="vies", key="DE") == 1
    assert value(after, "trace30_breaker_state", breaker="vies", key="DE") == 2
    assert calls[0] >= 1 and calls[1] == calls[0]  # the open circuit asked nothing


def test_labels_carry_no_personal_data(store: Store) -> None:
    client = vat_app(store).test_client()
    personal = ["jane.doe@example.com", "+33612345678", "FR7630006000011234567890189",
                "Jane Doe", NUMBER[2:]]
    client.post("/v1/vat/check", headers=AUTH, json={
        "vat_number": NUMBER, "trader": {"name": "Jane Doe", "city": "jane.doe@example.com"}})
    client.get("/v1/vat/" + personal[2])
    client.get("/healthz?email=jane.doe@example.com&phone=%2B33612345678")
    text = client.get("/metrics").get_data(as_text=True)
    safe = re.compile(r"[A-Za-z0-9_.:/<>+-]*")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.name.startswith("trace30_"):
                continue
            for name, label in sample.labels.items():
                assert safe.fullmatch(label), (sample.name, name, label)
                assert "@" not in label
    for value_ in personal:
        assert value_ not in text


@pytest.mark.parametrize("exposure,networks,headers,status", [
    ("public", "", {}, 200),
    ("internal", "", {}, 401),
    ("internal", "", {"Authorization": "Bearer wrong"}, 401),
    ("internal", "", AUTH, 200),
    ("internal", "127.0.0.0/8", {}, 200),
    ("internal", "10.0.0.0/8", {}, 401),
    # a request a proxy relayed is never let in by its address
    ("internal", "127.0.0.0/8", {"X-Forwarded-For": "127.0.0.1"}, 401),
    ("off", "", AUTH, 404),
])
def test_who_may_read_metrics(store: Store, exposure: str, networks: str,
                              headers: dict[str, str], status: int) -> None:
    app = vat_app(store, METRICS=exposure, METRICS_NETWORKS=networks)
    response = app.test_client().get("/metrics", headers=headers)
    assert response.status_code == status
    if status != 200:
        assert response.content_type == "application/problem+json"
        assert "trace30_" not in response.get_data(as_text=True)


def test_metrics_are_internal_outside_sandbox_and_public_in_sandbox() -> None:
    from shared.config import load
    assert load({})["METRICS"] == "internal"
    assert load({"TRACE30_SANDBOX": "1"})["METRICS"] == "public"
    assert load({"TRACE30_METRICS_NETWORKS": "10.1.0.0/16"})["METRICS_NETWORKS"][0].prefixlen == 16


@pytest.mark.parametrize("name,text", [("METRICS", "yes"), ("METRICS_NETWORKS", "10.0.0.0/33")])
def test_a_bad_metrics_setting_stops_start_up(name: str, text: str) -> None:
    from shared.config import load
    with pytest.raises(ConfigError, match=f"TRACE30_{name} is not valid"):
        load({f"TRACE30_{name}": text})


def test_a_failing_collector_is_reported_and_the_scrape_still_answers(store: Store) -> None:
    from shared import metrics

    class Broken:
        name = "broken"

        def collect(self) -> list:
            raise OSError("the store is down")

    app = vat_app(store)
    metrics.add_collector(app, Broken())
    found = scrape(app.test_client())
    assert value(found, "trace30_scrape_collector_up", collector="broken") == 0
    assert any(name == "trace30_http_requests_total" for name, _ in found)


def test_processes_add_up_in_multiprocess_mode(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes serve requests; a third, which served none, shows them all (as any
    gunicorn worker answering /metrics must)."""
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    pids = together(metrics_workers.serve_healthz, [(3,), (4,)])
    assert len(set(pids)) == 2
    assert {p.name for p in tmp_path.iterdir()} >= {f"counter_{pid}.db" for pid in pids}
    [text] = together(metrics_workers.scrape, [()])
    found = samples(text)
    labels = {"service": "vat", "method": "GET", "route": "/healthz", "status": "200"}
    assert value(found, "trace30_http_requests_total", **labels) == 7


def test_a_guarded_call_without_a_slot_or_that_raises_is_counted() -> None:
    """No slot before the deadline: ``no_slot`` and a slot timeout; a request that could not be
    sent (raised through the guarded call): ``error``."""
    from prometheus_client import REGISTRY

    from shared.outbound import NotSent
    from shared.upstream import GuardedCall, Retry

    class NoTurn:
        def acquire(self, deadline: float) -> None:
            return None

        def release(self, token: object, error: object) -> None:
            raise AssertionError("nothing to release")

    def count(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, {"upstream": "bench", "key": "XX", **labels}) or 0

    def unsendable(timeout_s: float, attempt: int) -> None:
        raise NotSent("no", {"number": "cannot be sent"})

    before = (count("trace30_upstream_checks_total", outcome="no_slot", code=""),
              count("trace30_upstream_slot_timeouts_total"),
              count("trace30_upstream_checks_total", outcome="error", code=""))
    call = GuardedCall(None, Retry(0.0, 0.0), name="bench")
    assert call.run("XX", 0.0, lambda t, n: n, slot=NoTurn()).no_slot
    with pytest.raises(NotSent):
        call.run("XX", 1e12, unsendable)
    assert count("trace30_upstream_checks_total", outcome="no_slot", code="") == before[0] + 1
    assert count("trace30_upstream_slot_timeouts_total") == before[1] + 1
    assert count("trace30_upstream_checks_total", outcome="error", code="") == before[2] + 1
