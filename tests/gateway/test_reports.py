"""Transparency figures (``services/gateway/reports.py``): ``trace30 report`` and
``GET /v1/reports/traceability``, on SQLite and PostgreSQL.

The evidence log is seeded with plain INSERTs from a seeded random generator; while seeding,
the test writes down each fact it inserts (what, when, in which country), and the expected
figures are counted from those notes, not from the tables.
"""

from __future__ import annotations

import csv
import io
import json
import random
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import create_app, shutdown
from services.gateway.evidence import EvidenceLog
from services.gateway.evidence.schema import (
    complaints_table,
    reviews_table,
    staff_actions_table,
    statements_table,
    verifications_table,
)
from services.gateway.reports import COUNTS, traceability
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN
from trace30.cli import main

TENANT = "shop"
START, END = date(2025, 1, 15), date(2025, 3, 10)
LO = datetime(2025, 1, 15, tzinfo=UTC)
HI = datetime(2025, 3, 11, tzinfo=UTC)
#: A trader's country, and how its verifications say it (registration, VAT number,
#: the redacted submission's address, or nothing at all).
COUNTRIES = {
    "DE": {"registration_key": "DE:HRB:{i}"},
    "FR": {"vat_key": "FR{i:011d}"},
    "GR": {"vat_key": "EL{i:09d}"},
    "NL": {"submission": {"address": {"country_code": "NL"}}},
    "unknown": {},
}
REASONS = [("VAT_INVALID", "30(1)(d)"), ("MISSING_EMAIL", "30(1)(a)"),
           ("PAYEE_NAME_MISMATCH", "30(1)(c)"), ("MISSING_SELF_CERTIFICATION", "30(1)(e)")]

KEYS = [
    {"id": "ops-shop", "key": "ops-shop-key", "scopes": ["ops"], "tenant": TENANT},
    {"id": "onb-shop", "key": "onb-shop-key", "scopes": ["onboarding"], "tenant": TENANT},
    {"id": "ops-other", "key": "ops-other-key", "scopes": ["ops"], "tenant": "other"},
]


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


@dataclass
class Expected:
    """The facts seeded in range, as (figure, time, country); decisions' durations."""

    facts: list[tuple[str, datetime, str, Any]] = field(default_factory=list)

    def note(self, figure: str, at: datetime, country: str, extra: Any = None) -> None:
        if LO <= at < HI:
            self.facts.append((figure, at, country, extra))

    def figures(self, period: str) -> tuple[dict[tuple[str, str], dict[str, Any]],
                                            dict[str, Any]]:
        """Expected rows by (period, country), and the totals."""
        def key_of(at: datetime) -> str:
            return at.strftime("%Y-%m" if period == "month" else "%Y-%m-%d")

        groups: defaultdict[tuple[str, str], list] = defaultdict(list)
        for fact in self.facts:
            groups[(key_of(fact[1]), fact[2])].append(fact)
        return ({k: self._row(v) for k, v in groups.items()}, self._row(self.facts))

    @staticmethod
    def _row(facts: list) -> dict[str, Any]:
        row: dict[str, Any] = dict.fromkeys(COUNTS, 0)
        traders, durations = set(), []
        reasons: Counter[str] = Counter()
        items: Counter[str] = Counter()
        for figure, _, _, extra in facts:
            if figure == "traders_submitted":
                traders.add(extra)
            elif figure == "decision":
                durations.append(extra)
            elif figure == "reasons":
                reasons.update({code for code, _ in extra})
                items.update({item for _, item in extra})
            else:
                row[figure] += 1
        row["traders_submitted"] = len(traders)
        row["median_decision_s"] = (round(statistics.median(durations), 3)
                                    if durations else None)
        row["reasons"], row["items"] = dict(reasons), dict(items)
        return row


def seed(engine: sa.Engine, tenant: str = TENANT, n: int = 60, rng_seed: int = 7) -> Expected:
    """Traders of every country with verifications, reviews, statements, reinstatements and
    complaints from December 2024 to April 2025 (some before and after the report's range)."""
    rng = random.Random(rng_seed)
    expected = Expected()
    base = datetime(2024, 12, 20, tzinfo=UTC)
    v_rows, r_rows, s_rows, a_rows, c_rows = [], [], [], [], []

    def verification(vid: str, trader: str, country: str, i: int, created: datetime,
                     **values: Any) -> dict[str, Any]:
        ident = {k: (v.format(i=i) if isinstance(v, str) else v)
                 for k, v in COUNTRIES[country].items()}
        row = {"id": vid, "trader_id": trader, "client_id": "c", "fingerprint": "fp" + vid,
               "state": "settled", "submission": {"trader_id": trader}, "created_at": created,
               "tenant_id": tenant, "source": "automated", **ident, **values}
        v_rows.append(row)
        return row

    for i in range(n):
        trader, country = f"t{i}", rng.choice(list(COUNTRIES))
        created = base + timedelta(seconds=rng.randrange(0, 110 * 86400))
        delay = rng.randrange(1, 4000)
        verdict = rng.choice(["verified", "needs_review", "rejected", "pending", None])
        reasons = rng.sample(REASONS, rng.randrange(0, 3))
        settled = created + timedelta(seconds=delay)
        vid = f"v{i}"
        verification(vid, trader, country, i, created,
                     state="settled" if verdict else "running", verdict=verdict,
                     settled_at=settled if verdict else None,
                     reasons=[{"code": c, "item": it, "severity": rng.choice(["error", "warning"])}
                              for c, it in reasons]
                     # recorded only, or an upstream's fault: not counted
                     + [{"code": "VIES_REST_FALLBACK", "item": "30(1)(d)", "severity": "info"},
                        {"code": "VIES_UNAVAILABLE", "item": "30(1)(b)",
                         "severity": "pending"}])
        expected.note("traders_submitted", created, country, trader)
        if verdict:
            figure = {"verified": "verified", "needs_review": "sent_to_review",
                      "rejected": "rejected", "pending": None}[verdict]
            if figure:
                expected.note(figure, settled, country)
            if verdict in ("verified", "rejected"):
                expected.note("decision", settled, country, float(delay))
            expected.note("reasons", settled, country, reasons)
        if i % 7 == 0:  # a re-verification of the same trader, in another month
            again = created + timedelta(days=20)
            verification(f"v{i}b", trader, country, i, again, verdict="verified",
                         settled_at=again + timedelta(seconds=10), reasons=[])
            expected.note("traders_submitted", again, country, trader)
            expected.note("verified", again + timedelta(seconds=10), country)
            expected.note("decision", again + timedelta(seconds=10), country, 10.0)
            expected.note("reasons", again + timedelta(seconds=10), country, [])
        if verdict == "needs_review":
            decided = settled + timedelta(hours=rng.randrange(1, 300))
            decision = rng.choice(["approve", "reject", "request_information"])
            r_rows.append({"id": f"r{i}", "tenant_id": tenant, "trader_id": trader,
                           "decision": decision, "note": "n", "reviewer": "staff:x",
                           "decided_at": decided, "settles_verification_id": vid,
                           "verification_id": f"m{i}"})
            expected.note({"approve": "reviewer_approved", "reject": "reviewer_rejected",
                           "request_information": "reviewer_requested_information"}[decision],
                          decided, country)
            manual_verdict = {"approve": "verified", "reject": "rejected",
                              "request_information": "needs_review"}[decision]
            # the manual verification carries no identity keys: its country is the trader's
            v_rows.append({"id": f"m{i}", "trader_id": trader, "client_id": "c",
                           "fingerprint": f"fpm{i}", "state": "settled",
                           "verdict": manual_verdict, "submission": {}, "created_at": decided,
                           "settled_at": decided, "tenant_id": tenant, "source": "manual",
                           "settles_verification_id": vid, "review_id": f"r{i}"})
            expected.note({"verified": "verified", "rejected": "rejected",
                           "needs_review": "sent_to_review"}[manual_verdict], decided, country)
            if manual_verdict != "needs_review":
                expected.note("decision", decided, country, (decided - created).total_seconds())
            expected.note("reasons", decided, country, [])
        if verdict and rng.random() < 0.5:
            kind = rng.choice(["rejection", "correction_request", "suspension"])
            at = settled + timedelta(hours=rng.randrange(1, 200))
            s_rows.append({"id": f"s{i}", "tenant_id": tenant, "trader_id": trader,
                           "kind": kind, "verification_id": vid, "automated": False,
                           "content": {"facts": "x"}, "created_at": at})
            if kind != "rejection":
                expected.note({"correction_request": "corrections_requested",
                               "suspension": "suspended"}[kind], at, country)
            if kind == "suspension" and rng.random() < 0.6:
                back = at + timedelta(days=rng.randrange(1, 20))
                a_rows.append({"id": f"a{i}", "at": back, "actor": "staff:x",
                               "action": "reinstate", "trader_id": trader,
                               "verification_id": vid, "tenant_id": tenant})
                expected.note("reinstated", back, country)
            if rng.random() < 0.6:
                received = at + timedelta(days=rng.randrange(0, 15))
                status = rng.choice(["open", "upheld", "rejected"])
                decided_c = received + timedelta(days=rng.randrange(1, 30))
                c_rows.append({"id": f"c{i}", "tenant_id": tenant, "trader_id": trader,
                               "statement_id": f"s{i}", "text": "t", "received_at": received,
                               "status": status,
                               "decided_at": decided_c if status != "open" else None})
                expected.note("complaints_received", received, country)
                if status != "open":
                    expected.note("complaints_decided", decided_c, country)
                    expected.note(f"complaints_{status}", decided_c, country)
        # another kind of staff action is no reinstatement
        a_rows.append({"id": f"x{i}", "at": created, "actor": "staff:x", "action": "reverify",
                       "trader_id": trader, "tenant_id": tenant})
    prefix = "" if tenant == TENANT else tenant + "-"  # ids are global, not per tenant
    for row in [*v_rows, *r_rows, *s_rows, *a_rows, *c_rows]:
        for name in ("id", "verification_id", "settles_verification_id", "statement_id",
                     "review_id"):
            if row.get(name):
                row[name] = prefix + row[name]
    with engine.begin() as conn:
        for table, rows in ((verifications_table, v_rows), (reviews_table, r_rows),
                            (statements_table, s_rows), (staff_actions_table, a_rows),
                            (complaints_table, c_rows)):
            for row in rows:  # one by one: the rows do not all have the same columns
                conn.execute(sa.insert(table).values(**row))
    return expected


def by_key(rows: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(r["period"], r["country"]): {k: v for k, v in r.items()
                                          if k not in ("period", "country")} for r in rows}


@pytest.mark.parametrize("period", ["month", "day"])
def test_figures_match_the_seeded_facts(evidence_log: EvidenceLog, period: str) -> None:
    expected = seed(evidence_log.engine)
    seed(evidence_log.engine, tenant="other", rng_seed=8)  # another tenant: never counted
    report = traceability(evidence_log.engine, tenant=TENANT, start=START, end=END,
                          period=period, today=date(2025, 4, 1))
    rows, totals = expected.figures(period)
    assert by_key(report.rows) == rows
    assert report.totals == totals
    assert report.closed
    assert {c for _, c in rows} == {"DE", "FR", "GR", "NL", "unknown"}  # the seed covers all
    # the seed exercises every figure in range
    assert all(totals[name] > 0 for name in COUNTS), totals
    assert report.rows == sorted(report.rows, key=lambda r: (r["period"], r["country"]))


def test_a_closed_period_reproduces(evidence_log: EvidenceLog) -> None:
    seed(evidence_log.engine)
    first = traceability(evidence_log.engine, tenant=TENANT, start=START, end=END,
                         today=date(2025, 4, 1))
    # later activity, after the period, changes nothing in it
    with evidence_log.engine.begin() as conn:
        conn.execute(sa.insert(statements_table).values(
            id="later", tenant_id=TENANT, trader_id="t1", kind="suspension", automated=True,
            content={}, created_at=datetime(2025, 5, 2, tzinfo=UTC)))
    again = traceability(evidence_log.engine, tenant=TENANT, start=START, end=END,
                         today=date(2026, 1, 1))
    assert json.dumps(first.as_json(), sort_keys=True) == json.dumps(again.as_json(),
                                                                     sort_keys=True)
    assert first.as_csv() == again.as_csv()
    assert not traceability(evidence_log.engine, tenant=TENANT, start=START, end=END,
                            today=END).closed


def test_empty_period(evidence_log: EvidenceLog) -> None:
    seed(evidence_log.engine)
    report = traceability(evidence_log.engine, tenant=TENANT, start=date(2030, 1, 1),
                          end=date(2030, 1, 31))
    assert report.rows == []
    assert report.totals == {**dict.fromkeys(COUNTS, 0), "median_decision_s": None,
                             "reasons": {}, "items": {}}
    assert report.as_csv().splitlines()[0] == "period,country,figure,value"
    assert "total,all,verified,0" in report.as_csv()


def csv_figures(text: str) -> dict[tuple[str, str], dict[str, str]]:
    rows = list(csv.DictReader(io.StringIO(text)))
    out: defaultdict[tuple[str, str], dict[str, str]] = defaultdict(dict)
    for r in rows:
        out[(r["period"], r["country"])][r["figure"]] = r["value"]
    return out


def check_csv(text: str, expected: Expected, period: str) -> None:
    rows, totals = expected.figures(period)
    got = csv_figures(text)
    for key, row in [*rows.items(), (("total", "all"), totals)]:
        assert got[key]["verified"] == str(row["verified"])
        assert got[key]["traders_submitted"] == str(row["traders_submitted"])
        assert got[key]["complaints_received"] == str(row["complaints_received"])
        median = row["median_decision_s"]
        assert got[key]["median_decision_s"] == ("" if median is None else str(median))
        for code, n in row["reasons"].items():
            assert got[key][f"reason:{code}"] == str(n)
        for item, n in row["items"].items():
            assert got[key][f"item:{item}"] == str(n)
    assert set(got) == {*rows, ("total", "all")}


@pytest.fixture
def app(database_url: str, store: Store) -> Iterator[Flask]:
    app = create_app({
        "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store, "DATABASE_URL": database_url,
        "GATEWAY_API_KEYS": json.dumps(KEYS), "GATEWAY_BACKGROUND": False,
    })
    yield app
    shutdown(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def _engine(app: Flask) -> sa.Engine:
    from services.gateway import api

    return app.extensions[api.EXTENSION].evidence.engine


def test_api_json_and_csv(app: Flask, client: FlaskClient) -> None:
    expected = seed(_engine(app))
    query = {"from": START.isoformat(), "to": END.isoformat()}
    r = client.get("/v1/reports/traceability", query_string=query, headers=auth("ops-shop-key"))
    assert r.status_code == 200, r.get_json()
    body = r.get_json()
    rows, totals = expected.figures("month")
    assert by_key(body["rows"]) == rows and body["totals"] == totals
    assert (body["tenant"], body["from"], body["to"], body["period"], body["closed"]) == (
        TENANT, "2025-01-15", "2025-03-10", "month", True)
    as_csv = client.get("/v1/reports/traceability", query_string={**query, "format": "csv",
                                                                   "period": "day"},
                        headers=auth("ops-shop-key"))
    assert as_csv.mimetype == "text/csv"
    check_csv(as_csv.get_data(as_text=True), expected, "day")
    accept = client.get("/v1/reports/traceability", query_string=query,
                        headers={**auth("ops-shop-key"), "Accept": "text/csv"})
    assert accept.mimetype == "text/csv"


def test_api_scope_and_tenant(app: Flask, client: FlaskClient) -> None:
    seed(_engine(app))
    query = {"from": START.isoformat(), "to": END.isoformat()}
    assert client.get("/v1/reports/traceability", query_string=query).status_code == 401
    onboarding = client.get("/v1/reports/traceability", query_string=query,
                            headers=auth("onb-shop-key"))
    assert onboarding.status_code == 403
    other = client.get("/v1/reports/traceability", query_string=query,
                       headers=auth("ops-other-key")).get_json()
    assert other["tenant"] == "other" and other["rows"] == []


@pytest.mark.parametrize(("query", "field_name"), [
    ({"to": "2025-03-10"}, "from"),
    ({"from": "2025-03-10", "to": "2025-03-01"}, "to"),
    ({"from": "2025-03-01", "to": "2025-03-10", "period": "week"}, "period"),
    ({"from": "2025-02-30", "to": "2025-03-10"}, "from"),
    ({"from": "2025-03-01", "to": "2025-03-10", "format": "xml"}, "format"),
    ({"from": "2000-01-01", "to": "2025-03-10"}, "to"),
])
def test_api_bad_query_is_400(client: FlaskClient, query: dict, field_name: str) -> None:
    r = client.get("/v1/reports/traceability", query_string=query, headers=auth("ops-shop-key"))
    assert r.status_code == 400
    assert r.mimetype == "application/problem+json"
    assert field_name in json.dumps(r.get_json()["errors"])


def test_cli_report(evidence_log: EvidenceLog, database_url: str, tmp_path) -> None:
    expected = seed(evidence_log.engine)
    runner = CliRunner()
    env = {"TRACE30_DATABASE_URL": database_url, "TRACE30_SANDBOX": "1"}
    args = ["report", "--from", START.isoformat(), "--to", END.isoformat(), "--tenant", TENANT]
    as_csv = runner.invoke(main, [*args, "--period", "day"], env=env)
    assert as_csv.exit_code == 0, as_csv.output
    check_csv(as_csv.output, expected, "day")
    out = tmp_path / "report.json"
    as_json = runner.invoke(main, [*args, "--format", "json", "--output", str(out)], env=env)
    assert as_json.exit_code == 0, as_json.output
    body = json.loads(out.read_text())
    rows, totals = expected.figures("month")
    assert by_key(body["rows"]) == rows and body["totals"] == totals
    bad = runner.invoke(main, ["report", "--from", "2025-03-10", "--to", "2025-03-01"],
                        env=env)
    assert bad.exit_code == 2 and "--to" in bad.output
