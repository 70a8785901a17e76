"""The sample alert rules (deploy/prometheus/) and Grafana dashboard (deploy/grafana/) against what
the services really export: every metric name they use is one a service's ``/metrics`` shows
after real requests; and promtool checks the rules, the scrape configuration and the rules'
unit tests (deploy/prometheus/alerts_test.yml)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from flask import Flask
from prometheus_client.parser import text_string_to_metric_families

from services.gateway import create_app as gateway_app
from services.gateway import shutdown
from services.payment import create_app as payment_app
from services.registry import create_app as registry_app
from services.vat import create_app as vat_app
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError
from tests.conftest import AUTH, INTERNAL_TOKEN, ROOT
from tests.vat.fakes import FakeVies

PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "trace30.json"
NAME = re.compile(r"\btrace30_[a-z0-9_]+\b")
SEVERITIES = {"warning", "critical"}

#: The sample names of a family of each type (a counter ``x`` is sampled as ``x_total``).
SUFFIXES = {"counter": ("_total", "_created"), "gauge": ("",), "histogram": (
    "_bucket", "_sum", "_count", "_created"), "summary": ("", "_sum", "_count", "_created")}


def alert_rules() -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load(ALERTS.read_text())["groups"]
            for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    queries = [t["expr"] for panel in board["panels"] for t in panel["targets"]]
    queries += [v["query"] for v in board["templating"]["list"] if v["type"] == "query"]
    return queries


def names_in(queries: list[str]) -> set[str]:
    return {name for query in queries for name in NAME.findall(query)}


@pytest.fixture
def apps(store: Store, tmp_path: Path) -> Iterator[dict[str, Flask]]:
    """The four services, in sandbox, on this test's Redis prefix."""
    common = {"TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
              "REDIS_STORE": store}
    vies = FakeVies()
    vies.script("DE136695976", UpstreamError("down", Fault.OUTAGE, code="MS_UNAVAILABLE"))
    built = {
        "vat": vat_app({**common, "VIES": vies, "VIES_REST_FALLBACK": False,
                        "VIES_DEADLINE_S": 0.3, "VIES_BREAKER_THRESHOLD": 1}),
        "registry": registry_app(common),
        "payment": payment_app(common),
        "gateway": gateway_app({**common, "GATEWAY_BACKGROUND": False,
                                "DATABASE_URL": f"sqlite:///{tmp_path}/evidence.sqlite3"}),
    }
    yield built
    shutdown(built["gateway"])


def exported(apps: dict[str, Flask]) -> set[str]:
    """Every sample name the services' /metrics show after a few real requests."""
    vat = apps["vat"].test_client()
    for number in ("DE100", "DE136695976", "DE136695976"):  # answered, outage, circuit open
        response = vat.post("/v1/vat/check", json={"vat_number": number}, headers=AUTH)
        assert response.status_code == 200
    names: set[str] = set()
    for app in apps.values():
        client = app.test_client()
        assert client.get("/healthz").status_code == 200
        response = client.get("/metrics")
        assert response.status_code == 200
        for family in text_string_to_metric_families(response.get_data(as_text=True)):
            names.update(s.name for s in family.samples)
            names.update(family.name + suffix for suffix in SUFFIXES.get(family.type, ("",)))
    return names


def test_every_metric_the_alerts_and_the_dashboard_use_is_exported(
        apps: dict[str, Flask]) -> None:
    names = exported(apps)
    assert "trace30_verifications_pending" in names  # the gateway's scrape-time gauges
    assert "trace30_upstream_check_duration_seconds_bucket" in names
    used_by_alerts = names_in([rule["expr"] for rule in alert_rules()])
    used_by_dashboard = names_in(dashboard_queries())
    assert used_by_alerts and used_by_dashboard
    assert used_by_alerts - names == set()
    assert used_by_dashboard - names == set()
    # and the dashboard shows every family the services export
    def family(name: str) -> str:
        return re.sub(r"_(total|created|bucket|sum|count)$", "", name)

    assert ({family(n) for n in names if n.startswith("trace30_")}
            - {family(n) for n in used_by_dashboard}) == set()


def test_the_alert_rules_are_complete() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        assert "for" not in rule or re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]
    exprs = " ".join(rule["expr"] for rule in rules)
    # what issue 14 asks to be alerted on
    for needed in ("trace30_breaker_state", "trace30_upstream_checks_total",
                   "trace30_verifications_pending", "trace30_webhook_attempts_total",
                   "trace30_http_requests_total", "trace30_http_request_duration_seconds_bucket",
                   "trace30_rq_jobs"):
        assert needed in exprs, needed


def test_the_dashboard_is_a_grafana_dashboard() -> None:
    board = json.loads(DASHBOARD.read_text())
    assert board["uid"] and board["title"] and board["schemaVersion"] >= 36
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert panel["targets"], panel["title"]
        assert set(panel["gridPos"]) == {"x", "y", "w", "h"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
            assert target["expr"].count("(") == target["expr"].count(")"), target["expr"]
    assert any(v["type"] == "datasource" for v in board["templating"]["list"])


def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool is not installed: run `make promtool` (Debian package prometheus)")
    return path


def test_promtool_checks_the_rules_the_config_and_the_alerts_unit_tests(tmp_path: Path) -> None:
    def run(*args: str, cwd: Path = PROMETHEUS) -> None:
        done = subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True,
                              timeout=60, check=False)
        assert done.returncode == 0, done.stdout + done.stderr

    run("check", "rules", "alerts.yml")
    run("test", "rules", "alerts_test.yml")
    # the scrape configuration, with its token file where this test can make one
    token = tmp_path / "token"
    token.write_text("t")
    config = (PROMETHEUS / "prometheus.yml").read_text().replace(
        "/etc/prometheus/secrets/trace30-internal-token", str(token))
    (tmp_path / "prometheus.yml").write_text(config)
    shutil.copy(ALERTS, tmp_path / "alerts.yml")
    run("check", "config", "prometheus.yml", cwd=tmp_path)
