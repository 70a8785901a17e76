"""Complaints (Art 20, 30(4); issue 12 point 5): the trader contests a decision by its
statement; a person other than the one who took it decides; the outcome goes by webhook.
The purge deletes the casework rows made through the API."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from tests.gateway.casework_util import (
    TRADER,
    events,
    evidence,
    hooks,
    needs_review,
    problem,
    review,
    submission,
    verify,
)
from tests.gateway.conftest import ONBOARDING, OPS


def rejected_by_alice(api: FlaskClient) -> dict:
    needs_review(api)
    body = review(api, decision="reject", items=["c"],
                  note="The account belongs to another shop.").get_json()
    return body["verification"]["statement"]


def complain(api: FlaskClient, statement_id: str, trader_id: str = TRADER, **body: object):
    data = {"statement_id": statement_id, "text": "The account is mine: I own both shops.",
            **body}
    return api.post(f"/v1/traders/{trader_id}/complaints", json=data, headers=ONBOARDING)


def decide(api: FlaskClient, complaint_id: str, **body: object):
    data = {"outcome": "upheld", "note": "Bank statement shows the same owner.",
            "decided_by": "bob", **body}
    return api.post(f"/v1/complaints/{complaint_id}/decision", json=data, headers=OPS)


def test_a_complaint_is_decided_by_another_person_and_upholding_withdraws_the_rejection(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    statement = rejected_by_alice(casework_api)
    resp = complain(casework_api, statement["id"], locale="fr")
    assert resp.status_code == 201, resp.get_json()
    complaint = resp.get_json()
    assert complaint["status"] == "open" and complaint["locale"] == "fr"
    assert complaint["contested_by"] == "alice via client:staff"
    hook = hooks(casework_app)[-1]
    assert hook["event"] == "complaint.received" and hook["statement"]["id"] == statement["id"]
    assert [c["id"] for c in evidence(casework_app).complaints(tenant="default",
                                                               status="open")] == [
        complaint["id"]]

    same = problem(decide(casework_api, complaint["id"], decided_by="Alice"), 403)
    assert "decided_by" in same["errors"]
    assert evidence(casework_app).complaint(complaint["id"], tenant="default")["status"] == (
        "open")

    resp = decide(casework_api, complaint["id"])
    assert resp.status_code == 200, resp.get_json()
    decided = resp.get_json()
    assert decided["status"] == "upheld" and decided["effect"] == "rejection_withdrawn"
    assert decided["decided_by"] == "bob via client:staff"
    current = casework_api.get(f"/v1/traders/{TRADER}", headers=OPS).get_json()
    assert current["verdict"] == "needs_review" and current["source"] == "manual"
    assert current["trader"]["state"] == "active"
    outcome = [h for h in hooks(casework_app) if h["event"] == "complaint.decided"][-1]
    assert outcome["complaint"]["status"] == "upheld"
    assert outcome["complaint"]["message"].startswith("Votre réclamation a été accueillie")
    assert outcome["statement"]["id"] == statement["id"]
    assert "verdict.changed" in events(casework_app)[-2:]
    assert "already decided" in problem(decide(casework_api, complaint["id"]), 409)["detail"]
    actions = [a["action"] for a in evidence(casework_app).actions(TRADER, tenant="default")]
    assert "complaint_upheld" in actions and "complaint_received" in actions


def test_a_complaint_on_an_automated_decision_may_be_rejected_by_any_reviewer(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    verify(casework_api, submission(trader_id=TRADER, self_certification={"accepted": False}))
    statement = evidence(casework_app).statements(TRADER, tenant="default")[0]
    complaint = complain(casework_api, statement["id"]).get_json()
    assert complaint["contested_by"] is None
    resp = decide(casework_api, complaint["id"], outcome="rejected", decided_by="alice")
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "rejected" and resp.get_json()["effect"] is None
    hook = hooks(casework_app)[-1]
    assert hook["event"] == "complaint.decided" and hook["complaint"]["status"] == "rejected"
    assert casework_api.get(f"/v1/traders/{TRADER}", headers=OPS).get_json()["verdict"] == (
        "rejected")


def test_upholding_a_complaint_against_a_suspension_reinstates(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    due = datetime.now(UTC) + timedelta(seconds=1)
    casework_api.post(f"/v1/traders/{TRADER}/corrections", headers=OPS, json={
        "items": ["c"], "reasons": "Give a bank statement.", "due_at": due.isoformat()})
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
    suspended = casework_api.post(f"/v1/traders/{TRADER}/suspension",
                                  headers=ONBOARDING).get_json()
    complaint = complain(casework_api, suspended["statement"]["id"]).get_json()
    decided = decide(casework_api, complaint["id"]).get_json()
    assert decided["effect"] == "reinstated"
    state = casework_api.get(f"/v1/traders/{TRADER}", headers=OPS).get_json()["trader"]
    assert state["state"] == "reinstated"


def test_bad_complaints_and_decisions_are_4xx(casework_app: Flask,
                                              casework_api: FlaskClient) -> None:
    statement = rejected_by_alice(casework_api)
    assert "statement_id" in problem(complain(casework_api, "nope"), 400)["errors"]
    assert "text" in problem(complain(casework_api, statement["id"], text="  "), 400)["errors"]
    assert "text" in problem(complain(casework_api, statement["id"], text="x" * 5001),
                             400)["errors"]
    verify(casework_api, submission())  # another trader: not its statement
    problem(complain(casework_api, statement["id"], trader_id=submission()["trader_id"]), 400)
    complaint = complain(casework_api, statement["id"]).get_json()
    assert "outcome" in problem(decide(casework_api, complaint["id"], outcome="maybe"),
                                400)["errors"]
    assert "note" in problem(decide(casework_api, complaint["id"], note=""), 400)["errors"]
    problem(decide(casework_api, "nope"), 404)
    problem(casework_api.post(f"/v1/complaints/{complaint['id']}/decision",
                              headers=ONBOARDING,
                              json={"outcome": "upheld", "note": "x", "decided_by": "b"}), 403)
    assert evidence(casework_app).complaint(complaint["id"], tenant="default")["status"] == (
        "open")


def test_the_purge_deletes_reviews_statements_and_complaints(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    statement = rejected_by_alice(casework_api)
    complain(casework_api, statement["id"])
    log = evidence(casework_app)
    counts = log.purge_trader(TRADER, tenant="default")
    assert counts["reviews"] == 1 and counts["statements"] == 1 and counts["complaints"] == 1
    assert log.reviews(TRADER, tenant="default") == []
    assert log.statements(TRADER, tenant="default") == []
    assert log.complaints(tenant="default", trader_id=TRADER) == []
    assert log.trader_state(TRADER, tenant="default") is None
