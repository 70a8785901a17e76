"""``GET /v1/traders`` (keyset pages, filters, tenants) and the keyset pages of the evidence
log's lists (the API's, the review queue's), on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import create_app, shutdown
from services.gateway.evidence import EvidenceLog
from tests.gateway.evidence_fixtures import T0, make_record

KEYS = {"a": "list-test-a-key", "a-staff": "list-test-a-staff-key", "b": "list-test-b-key"}


def bearer(who: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[who]}"}


@pytest.fixture
def app(gateway_config: dict) -> Iterator[Flask]:
    keys = json.dumps([
        {"id": "a", "key": KEYS["a"], "scopes": ["onboarding"], "tenant": "shop-a"},
        {"id": "a-staff", "key": KEYS["a-staff"], "scopes": ["ops"], "tenant": "shop-a"},
        {"id": "b", "key": KEYS["b"], "scopes": ["onboarding"], "tenant": "shop-b"},
    ])
    app = create_app({**gateway_config, "GATEWAY_API_KEYS": keys})
    yield app
    shutdown(app)


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


def log_of(app: Flask) -> EvidenceLog:
    return app.extensions["trace30.gateway"].evidence


def seed(log: EvidenceLog, tenant: str, n: int, *, prefix: str = "t") -> list[str]:
    """``n`` traders of ``tenant``, saved in order (so in ``updated_at`` order); every third
    needs review, countries alternate FR/DE."""
    ids = []
    for i in range(n):
        trader_id = f"{prefix}{i:03d}"
        verdict = "needs_review" if i % 3 == 0 else "verified"
        log.save(make_record(f"{tenant}-{trader_id}", trader_id, tenant_id=tenant,
                             verdict=verdict, submission={
                                 "trader_id": trader_id,
                                 "address": {"country_code": "FR" if i % 2 else "DE"}}))
        ids.append(trader_id)
    return ids


def walk(http: FlaskClient, who: str, query: str = "", limit: int = 4) -> list[dict[str, Any]]:
    """Every page of the list, following ``next``; its traders."""
    traders, cursor = [], None
    for _ in range(100):
        url = f"/v1/traders?limit={limit}{'&' + query if query else ''}"
        resp = http.get(url + (f"&cursor={cursor}" if cursor else ""), headers=bearer(who))
        assert resp.status_code == 200, resp.get_json()
        body = resp.get_json()
        assert len(body["traders"]) <= limit
        traders += body["traders"]
        cursor = body["next"]
        if cursor is None:
            assert "Link" not in resp.headers
            return traders
        assert resp.headers["Link"].endswith('>; rel="next"') and f"cursor={cursor}" in (
            resp.headers["Link"])
    raise AssertionError("the pages never end")


def test_pages_follow_each_other_to_the_end_in_updated_order(app: Flask,
                                                             http: FlaskClient) -> None:
    ids = seed(log_of(app), "shop-a", 10)
    traders = walk(http, "a")
    assert [t["trader_id"] for t in traders] == ids  # each once, least recently changed first
    first = traders[0]
    assert first["verdict"] == "needs_review" and first["state"] == "active"
    assert first["country"] == "DE" and first["current_verification_id"] == "shop-a-t000"
    assert first["ended_at"] is None and datetime.fromisoformat(first["updated_at"])
    stamps = [t["updated_at"] for t in traders]
    assert stamps == sorted(stamps)
    # a trader changed since moves to the end: the sync use (updated_since)
    since = traders[-1]["updated_at"]
    log_of(app).end_relationship("t004", T0 + timedelta(days=1), tenant="shop-a")
    changed = walk(http, "a", f"updated_since={since.replace('+', '%2B')}")
    assert [t["trader_id"] for t in changed] == ["t009", "t004"]
    assert changed[-1]["ended_at"] is not None
    assert walk(http, "a-staff", limit=200)[-1]["trader_id"] == "t004"  # ops may list too


def test_filters(app: Flask, http: FlaskClient) -> None:
    seed(log_of(app), "shop-a", 9)
    assert [t["trader_id"] for t in walk(http, "a", "needs_review=true")] == [
        "t000", "t003", "t006"]
    assert len(walk(http, "a", "needs_review=false")) == 6
    assert [t["trader_id"] for t in walk(http, "a", "verdict=needs_review&country=FR")] == [
        "t003"]
    assert {t["country"] for t in walk(http, "a", "country=DE")} == {"DE"}
    assert walk(http, "a", "state=suspended") == []
    middle = walk(http, "a")[4]["updated_at"].replace("+", "%2B")
    assert [t["trader_id"] for t in walk(http, "a", f"updated_until={middle}")] == [
        "t000", "t001", "t002", "t003"]


def test_a_tenant_sees_only_its_traders_and_its_cursors(app: Flask, http: FlaskClient) -> None:
    seed(log_of(app), "shop-a", 6, prefix="a")
    seed(log_of(app), "shop-b", 3, prefix="b")
    assert [t["trader_id"] for t in walk(http, "b")] == ["b000", "b001", "b002"]
    assert len(walk(http, "a")) == 6
    page = http.get("/v1/traders?limit=2", headers=bearer("a")).get_json()
    # shop-a's cursor is no cursor for shop-b: a 400, not shop-a's next page
    resp = http.get(f"/v1/traders?limit=2&cursor={page['next']}", headers=bearer("b"))
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert list(resp.get_json()["errors"]) == ["cursor"]
    # nor is it valid with other filters
    resp = http.get(f"/v1/traders?limit=2&country=FR&cursor={page['next']}", headers=bearer("a"))
    assert resp.status_code == 400 and list(resp.get_json()["errors"]) == ["cursor"]


@pytest.mark.parametrize(("query", "field"), [
    ("limit=0", "limit"), ("limit=201", "limit"), ("limit=x", "limit"),
    ("cursor=abc", "cursor"), ("cursor=" + "x" * 3000, "cursor"),
    ("verdict=approved", "verdict"), ("state=gone", "state"), ("country=France", "country"),
    ("country=fr", "country"), ("needs_review=maybe", "needs_review"),
    ("updated_since=yesterday", "updated_since"),
    ("updated_since=2026-01-01T00:00:00", "updated_since"),  # no offset: ambiguous
    ("updated_since=2026-02-01T00:00:00Z&updated_until=2026-01-01T00:00:00Z", "updated_until"),
    ("colour=red", "colour"),
])
def test_a_bad_filter_or_cursor_is_a_400_naming_it(http: FlaskClient, query: str,
                                                   field: str) -> None:
    resp = http.get(f"/v1/traders?{query}", headers=bearer("a"))
    assert resp.status_code == 400, (query, resp.get_data(as_text=True)[:300])
    assert resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert field in json.dumps(problem["errors"]), problem
    assert "Traceback" not in resp.get_data(as_text=True)


def test_a_forged_cursor_is_refused(app: Flask, http: FlaskClient) -> None:
    seed(log_of(app), "shop-a", 3)
    cursor = http.get("/v1/traders?limit=1", headers=bearer("a")).get_json()["next"]
    payload, signature = cursor.rsplit(".", 1)
    forged = payload[:-3] + ("AAA" if not payload.endswith("AAA") else "BBB")
    for bad in (f"{forged}.{signature}", f"{payload}.{signature[::-1]}"):
        resp = http.get(f"/v1/traders?limit=1&cursor={bad}", headers=bearer("a"))
        assert resp.status_code == 400 and list(resp.get_json()["errors"]) == ["cursor"]


def test_without_credentials_no_list(http: FlaskClient) -> None:
    assert http.get("/v1/traders").status_code == 401


# -- the evidence log's keyset pages, on SQLite and PostgreSQL --------------------------------


def test_trader_page_keyset_on_both_databases(evidence_log: EvidenceLog) -> None:
    for i in range(7):
        evidence_log.save(make_record(f"v{i}", f"t{i}", submission={
            "trader_id": f"t{i}", "address": {"country_code": "IT"}}))
    seen, after = [], None
    while True:
        rows = evidence_log.trader_page(tenant="default", limit=3, after=after)
        if not rows:
            break
        seen += [r["trader_id"] for r in rows]
        after = (rows[-1]["updated_at"], rows[-1]["trader_id"])
    assert seen == [f"t{i}" for i in range(7)]
    assert {r["country"] for r in evidence_log.trader_page(tenant="default", limit=10,
                                                           country="IT")} == {"IT"}
    assert evidence_log.trader_page(tenant="other", limit=10) == []


def test_the_review_queue_pages_by_keyset(evidence_log: EvidenceLog) -> None:
    for i in range(5):
        at = T0 + timedelta(minutes=i)
        evidence_log.save(make_record(f"v{i}", f"t{i}", verdict="needs_review",
                                      created_at=at, settled_at=at, checked_at=at))
    evidence_log.save(make_record("w0", "verified-one"))
    first = evidence_log.review_queue(tenant="default", limit=2)
    assert [r.trader_id for r in first] == ["t0", "t1"]
    rest = evidence_log.review_queue(tenant="default", limit=10,
                                     after=(first[-1].created_at, first[-1].trader_id))
    assert [r.trader_id for r in rest] == ["t2", "t3", "t4"]


def test_the_dashboard_queue_pages_by_keyset(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    from services.gateway import dashboard
    from tests.gateway.test_dashboard import page, sign_in

    for i in range(5):
        at = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=i)
        log_of(app).save(make_record(f"v{i}", f"q{i}", tenant_id="shop-a", verdict="needs_review",
                                     created_at=at, settled_at=at, checked_at=at))
    monkeypatch.setattr(dashboard, "QUEUE_LIMIT", 3)
    staff = app.test_client()
    sign_in(staff, KEYS["a-staff"])
    first = page(staff, "/ops/queue")
    assert re.findall(r'href="/ops/traders/(q\d)"', first) == ["q0", "q1", "q2"]
    more = re.search(r'<a rel="next" href="/ops/queue\?after=([^"]+)">', first)
    assert more is not None
    second = page(staff, f"/ops/queue?after={more.group(1)}")
    assert re.findall(r'href="/ops/traders/(q\d)"', second) == ["q3", "q4"]
    assert 'rel="next"' not in second and 'rel="first"' in second
    assert staff.get("/ops/queue?after=nonsense").status_code == 400
