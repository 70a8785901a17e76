"""The casework on the dashboard (issue 12 points 3-6): the review queue, the decision and
correction forms and the timeline on the trader page, statements, complaints; roles."""

from __future__ import annotations

import itertools
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import actors
from services.gateway.actors import Actor
from services.gateway.verifications import RetryLoop
from tests.gateway.casework_util import (
    TRADER,
    evidence,
    needs_review,
    review,
)
from tests.gateway.conftest import ONBOARDING, OPS, OPS_KEY
from tests.gateway.test_dashboard import HTML, csrf_of, page


@pytest.fixture
def staff(casework_api: FlaskClient) -> FlaskClient:
    token = csrf_of(casework_api.get("/ops/login"))
    resp = casework_api.post("/ops/login", data={"api_key": OPS_KEY, "csrf_token": token})
    assert resp.status_code == 303
    return casework_api


def form_post(client: FlaskClient, url: str, page_url: str, **data: object):
    token = csrf_of(client.get(page_url, headers=HTML))
    return client.post(url, data={"csrf_token": token, **data}, headers=HTML)


def check_accessible(html: str) -> None:
    """One h1, no skipped heading level, a label for every control."""
    assert html.count("<h1") == 1
    levels = [int(n) for n in re.findall(r"<h([1-6])", html)]
    assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels
    labelled = set(re.findall(r'<label for="([^"]+)"', html))
    for match in re.finditer(r"<(input|textarea|select)([^>]*)>", html):
        tag, attrs = match.groups()
        before = html[:match.start()]
        if 'type="hidden"' in attrs or before.rfind("<label") > before.rfind("</label>"):
            continue  # not shown, or inside its label
        ident = re.search(r'id="([^"]+)"', attrs)
        assert ident and ident.group(1) in labelled, f"unlabelled {tag}{attrs}"


def test_the_queue_and_a_decision_on_the_trader_page(casework_app: Flask,
                                                     staff: FlaskClient) -> None:
    needs_review(staff)
    html = page(staff, "/ops/queue")
    check_accessible(html)
    assert f'href="/ops/traders/{TRADER}"' in html and '<td class="waited">' in html

    trader_url = f"/ops/traders/{TRADER}"
    html = page(staff, trader_url)
    check_accessible(html)
    assert '<span class="trader-state">active</span>' in html
    for section in ("review", "correction", "timeline"):
        assert f'<section id="{section}">' in html
    assert 'value="approve">Approve</button>' in html and "Request information" in html

    blank = form_post(staff, f"{trader_url}/reviews", trader_url, decision="approve",
                      items="c", note=" ")
    assert blank.status_code == 400
    resp = form_post(staff, f"{trader_url}/reviews", trader_url, decision="approve",
                     items=["c"], note="Checked the bank statement.")
    assert resp.status_code == 303 and resp.headers["Location"] == trader_url
    current = evidence(casework_app).current(TRADER, tenant="default")
    assert current.verdict == "verified" and current.source == "manual"
    assert evidence(casework_app).reviews(TRADER, tenant="default")[0]["reviewer"] == (
        "client:staff")
    html = page(staff, trader_url)
    assert "decision approve of c by client:staff" in html
    assert 'value="approve"' not in html  # no longer to decide
    assert "Nothing to review." in page(staff, "/ops/queue")
    # the same facts again: the approval is kept, and the page says so
    staff.post(f"/v1/traders/{TRADER}/reverify", headers=OPS)
    html = page(staff, trader_url)
    assert "needs_review (same facts: the approval in force is kept)" in html
    assert "an approval is in force" in html
    assert '<span class="trader-state">active</span>' in html


def test_a_correction_its_statement_and_a_complaint_on_the_dashboard(
        casework_app: Flask, staff: FlaskClient) -> None:
    needs_review(staff)
    trader_url = f"/ops/traders/{TRADER}"
    resp = form_post(staff, f"{trader_url}/corrections", trader_url, items=["c"],
                     reasons="Send a bank statement naming the account holder.")
    assert resp.status_code == 303
    html = page(staff, trader_url)
    assert '<span class="trader-state">correction_requested</span>' in html
    statement = evidence(casework_app).statements(TRADER, tenant="default")[0]
    assert f'href="/ops/statements/{statement["id"]}"' in html
    shown = page(staff, f"/ops/statements/{statement['id']}")
    assert "Send a bank statement" in shown and "DSA Art 30(3); 30(1)(c)" in shown

    # the correction was staff's own (client:staff): the same actor may not decide the
    # complaint against it
    filed = staff.post(f"/v1/traders/{TRADER}/complaints", headers=ONBOARDING,
                       json={"statement_id": statement["id"], "text": "I sent it already."})
    complaint_id = filed.get_json()["id"]
    listed = page(staff, "/ops/complaints")
    check_accessible(listed)
    assert f'href="/ops/complaints/{complaint_id}"' in listed
    html = page(staff, f"/ops/complaints/{complaint_id}")
    assert "another person decides" in html and "Uphold" not in html
    refused = form_post(staff, f"/ops/complaints/{complaint_id}/decision",
                        f"/ops/complaints/{complaint_id}", outcome="upheld", note="ok")
    assert refused.status_code == 403


def test_a_complaint_decided_on_the_dashboard(casework_app: Flask,
                                              staff: FlaskClient) -> None:
    needs_review(staff)
    statement = review(staff, decision="reject", note="Not the trader's account.").get_json()[
        "verification"]["statement"]
    filed = staff.post(f"/v1/traders/{TRADER}/complaints", headers=ONBOARDING,
                       json={"statement_id": statement["id"], "text": "It is mine."})
    url = f"/ops/complaints/{filed.get_json()['id']}"
    html = page(staff, url)
    check_accessible(html)
    assert 'value="upheld">Uphold</button>' in html and "Reject complaint" in html
    resp = form_post(staff, f"{url}/decision", url, outcome="rejected",
                     note="The bank confirms another holder.")
    assert resp.status_code == 303
    html = page(staff, url)
    assert '<dd class="complaint-status">rejected</dd>' in html
    assert "No open complaint." in page(staff, "/ops/complaints")


def test_a_viewer_sees_but_cannot_act(casework_app: Flask, staff: FlaskClient,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    needs_review(staff)

    def as_viewer(client: object) -> Actor:
        return Actor(kind="staff", name="victor", tenant="default", role="viewer")

    monkeypatch.setattr(actors, "of_client", as_viewer)
    trader_url = f"/ops/traders/{TRADER}"
    html = page(staff, trader_url)
    assert "Approve</button>" not in html and "Request correction</button>" not in html
    for url, data in ((f"{trader_url}/reviews", {"decision": "approve", "items": "c",
                                                  "note": "ok"}),
                      (f"{trader_url}/corrections", {"items": "c", "reasons": "x"})):
        resp = form_post(staff, url, trader_url, **data)
        assert resp.status_code == 403, url
    assert evidence(casework_app).reviews(TRADER, tenant="default") == []
    assert evidence(casework_app).trader_state(TRADER, tenant="default")["state"] == "active"


def test_the_trader_page_shows_the_suspension_come_due(casework_app: Flask,
                                                       staff: FlaskClient) -> None:
    needs_review(staff)
    due = datetime.now(UTC) + timedelta(seconds=1)
    assert staff.post(f"/v1/traders/{TRADER}/corrections", headers=OPS, json={
        "items": ["c"], "reasons": "Send a bank statement.",
        "due_at": due.isoformat()}).status_code == 201
    html = page(staff, f"/ops/traders/{TRADER}")
    assert "Send a bank statement." in html and "suspension is due" not in html
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
    RetryLoop(casework_app.extensions["trace30.gateway"]).run_once()
    html = page(staff, f"/ops/traders/{TRADER}")
    assert '<strong class="suspension-due">the time is up: suspension is due</strong>' in html
    assert "the marketplace was told" in html
