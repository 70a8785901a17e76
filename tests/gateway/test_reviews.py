"""Review decisions (issue 12 point 3): a reviewer's decision on a ``needs_review`` trader
makes a manual verification settling the automated one; an approval is kept by a later
automated verification with the same facts, and undone when the facts change."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import create_app, shutdown
from services.gateway.actors import Actor
from services.gateway.casework import facts_fingerprint
from services.gateway.evidence import Transaction
from services.gateway.evidence.schema import documents_table, reviews_table
from shared.errors import Forbidden
from tests.gateway.casework_util import (
    GOOD,
    HOOK_URL,
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
from tests.gateway.conftest import API_KEY, ONBOARDING, OPS, OPS_KEY


def add_document(app: Flask, kind: str = "identity_document", trader_id: str = TRADER,
                 expires_on: date | None = None, tenant: str = "default",
                 name_check: dict | None = None) -> str:
    """A document row as the documents part stores it (the file itself is not needed)."""
    doc_id = uuid.uuid4().hex
    with evidence(app).engine.begin() as conn:
        conn.execute(sa.insert(documents_table).values(
            id=doc_id, tenant_id=tenant, trader_id=trader_id, kind=kind,
            issuing_country="FR", expires_on=expires_on or date.today() + timedelta(days=365),
            content_type="application/pdf", size_bytes=10, sha256="0" * 64,
            storage="database", storage_key=doc_id, uploaded_at=datetime.now(UTC),
            uploaded_by="client:staff", name_check=name_check))
    return doc_id


def trader(api: FlaskClient, trader_id: str = TRADER) -> dict:
    resp = api.get(f"/v1/traders/{trader_id}", headers=OPS)
    assert resp.status_code == 200
    return resp.get_json()


def test_an_approval_makes_a_manual_verification_that_settles_the_automated_one(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    automated = needs_review(casework_api)
    log = evidence(casework_app)
    assert [r.trader_id for r in log.review_queue(tenant="default")] == [TRADER]

    resp = review(casework_api)
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    manual = body["verification"]
    assert manual["verdict"] == "verified" and manual["source"] == "manual"
    assert manual["settles_verification_id"] == automated["id"]
    assert manual["review_id"] == body["review"]["id"]
    assert manual["items"]["30(1)(c)"] == "verified"
    assert body["review"]["reviewer"] == "alice via client:staff"

    current = trader(casework_api)
    assert current["id"] == manual["id"] and current["verdict"] == "verified"
    assert current["trader"]["approval_review_id"] == body["review"]["id"]
    assert log.review_queue(tenant="default") == []  # it left the queue
    changed = [h for h in hooks(casework_app) if h["event"] == "verdict.changed"]
    assert changed[-1]["verification"]["previous_verdict"] == "needs_review"
    assert changed[-1]["verification"]["source"] == "manual"
    action = log.actions(TRADER, tenant="default")[0]
    assert action["action"] == "review_approve" and action["actor"] == "client:staff"
    assert action["verification_id"] == manual["id"]
    assert action["detail"]["reviewer"] == "alice via client:staff"
    stored = log.review(body["review"]["id"], tenant="default")
    assert stored is not None
    assert stored["facts_fingerprint"] == facts_fingerprint(log.get(automated["id"]))


def test_an_approval_is_kept_by_a_re_verification_with_the_same_facts(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    approved = review(casework_api).get_json()
    before = events(casework_app)
    again = verify(casework_api, submission(trader_id=TRADER))  # same data, same answers
    assert again["verdict"] == "needs_review" and again["cached"] is False
    assert again["approval_kept"] == {"review_id": approved["review"]["id"],
                                      "verification_id": approved["verification"]["id"]}
    current = trader(casework_api)
    assert current["id"] == approved["verification"]["id"] and current["verdict"] == "verified"
    assert events(casework_app) == before  # nothing changed for the trader
    # a reverify with the same facts keeps it too
    resp = casework_api.post(f"/v1/traders/{TRADER}/reverify", headers=OPS)
    assert resp.get_json()["approval_kept"]["review_id"] == approved["review"]["id"]
    assert trader(casework_api)["verdict"] == "verified"


def test_an_approval_is_undone_when_the_facts_change(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    approved = review(casework_api).get_json()
    # new data (another address) still sharing the account: needs_review on new facts
    moved = verify(casework_api, submission(
        trader_id=TRADER, address={**GOOD["address"], "street": "9 rue du Bac"}))
    assert moved["verdict"] == "needs_review" and moved["approval_kept"] is None
    current = trader(casework_api)
    assert current["id"] == moved["id"] and current["verdict"] == "needs_review"
    assert current["trader"]["approval_review_id"] is None
    assert hooks(casework_app)[-1]["event"] == "verdict.changed"
    assert hooks(casework_app)[-1]["verification"]["previous_verdict"] == "verified"
    assert approved["review"]["id"] != current["review_id"]


def test_a_rejected_automated_verdict_always_applies(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    review(casework_api)
    bad = verify(casework_api, submission(trader_id=TRADER,
                                          self_certification={"accepted": False}))
    assert bad["verdict"] == "rejected" and bad["approval_kept"] is None
    state = trader(casework_api)
    assert state["verdict"] == "rejected" and state["trader"]["state"] == "correction_requested"
    assert state["trader"]["approval_review_id"] is None


def test_reject_makes_a_rejection_with_its_statement_and_a_correction(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    resp = review(casework_api, decision="reject", items=["c"], note="The account is the "
                  "other shop's; the trader has no account of its own.")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["verification"]["verdict"] == "rejected"
    assert body["verification"]["items"]["30(1)(c)"] == "failed"
    assert body["trader"]["state"] == "correction_requested"
    assert body["trader"]["correction"]["items"] == ["c"]
    changed = hooks(casework_app)[-1]
    assert changed["event"] == "verdict.changed"
    statement = changed["verification"]["statement"]
    assert statement["url"] == f"/v1/statements/{statement['id']}"
    assert changed["verification"]["correction"]["requested"] is True
    stored = evidence(casework_app).statement(statement["id"], tenant="default")
    assert stored["kind"] == "rejection" and stored["automated"] is False
    assert stored["decided_by"] == "alice via client:staff"


def test_a_rejection_names_the_documents_relied_on_among_its_sources(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    statement_doc = add_document(casework_app, kind="bank_statement")
    body = review(casework_api, decision="reject", items=["c"], document_ids=[statement_doc],
                  note="The bank statement names another holder.").get_json()
    s = casework_api.get(body["verification"]["statement"]["url"], headers=OPS).get_json()
    documents = [src for src in s["sources"] if src["source"].startswith("document:")]
    assert documents == [{"source": "document: bank_statement", "reference": "0" * 64,
                          "checked_at": documents[0]["checked_at"]}]
    assert documents[0]["checked_at"]
    assert any("another holder" in (f.get("text") or "") for f in s["facts"])


def test_request_information_keeps_needs_review_and_asks_for_a_correction(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    resp = review(casework_api, decision="request_information", items=["c"],
                  note="Send a bank statement showing the account holder.")
    assert resp.status_code == 201
    body = resp.get_json()
    assert body["verification"]["verdict"] == "needs_review"
    assert body["trader"]["state"] == "correction_requested"
    assert events(casework_app)[-1] == "trader.correction_requested"
    hook = hooks(casework_app)[-1]
    assert hook["statement"]["id"] and hook["trader"]["correction"]["reasons"].startswith("Send")
    # still needs a person: in the queue, and a later approval closes the correction
    assert [r.trader_id for r in evidence(casework_app).review_queue(tenant="default")] == [
        TRADER]
    approved = review(casework_api).get_json()
    assert approved["trader"]["state"] == "active" and approved["trader"]["correction"] is None


def test_approving_b_needs_a_valid_identity_document_of_the_trader(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    missing = problem(review(casework_api, items=["b", "c"]), 400)
    assert "document_ids" in missing["errors"]
    expired = add_document(casework_app, expires_on=date.today() - timedelta(days=1))
    statement_only = add_document(casework_app, kind="bank_statement")
    mismatched = add_document(casework_app, name_check={"match": False, "checked": True})
    problem(review(casework_api, items=["b"],
                   document_ids=[expired, statement_only, mismatched]), 400)
    other_traders = add_document(casework_app, trader_id="someone-else")
    unknown = problem(review(casework_api, items=["b"], document_ids=[other_traders]), 400)
    assert "document_ids" in unknown["errors"]
    assert evidence(casework_app).reviews(TRADER, tenant="default") == []

    passport = add_document(casework_app)
    resp = review(casework_api, items=["b", "c"], document_ids=[passport])
    assert resp.status_code == 201
    items = resp.get_json()["verification"]["items"]
    assert items["30(1)(b)"] == "verified" and items["30(1)(c)"] == "verified"
    assert resp.get_json()["review"]["document_ids"] == [passport]


@pytest.mark.parametrize(("body", "field"), [
    ({"decision": "maybe"}, "decision"),
    ({"note": "   "}, "note"),
    ({"note": None}, "note"),
    ({"items": ["f"]}, "items"),
    ({"items": []}, "items"),
    ({"reviewer": ""}, "reviewer"),
])
def test_bad_decisions_are_400_naming_the_field(casework_app: Flask,
                                                casework_api: FlaskClient, body: dict,
                                                field: str) -> None:
    needs_review(casework_api)
    data = {"decision": "approve", "items": ["c"], "note": "ok", "reviewer": "alice", **body}
    data = {k: v for k, v in data.items() if v is not None}
    resp = casework_api.post(f"/v1/traders/{TRADER}/reviews", json=data, headers=OPS)
    assert field in problem(resp, 400)["errors"]
    assert evidence(casework_app).reviews(TRADER, tenant="default") == []


def test_approve_needs_a_trader_that_needs_review(casework_api: FlaskClient) -> None:
    verify(casework_api, GOOD)
    conflict = problem(review(casework_api, GOOD["trader_id"]), 409)
    assert "verified" in conflict["detail"]
    # reject may be taken on a trader still trading
    assert review(casework_api, GOOD["trader_id"], decision="reject", note="Fraud report "
                  "confirmed by the bank.").status_code == 201
    again = problem(review(casework_api, GOOD["trader_id"], decision="reject", note="x"), 409)
    assert "rejected" in again["detail"]


def test_who_may_decide(casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    problem(casework_api.post(f"/v1/traders/{TRADER}/reviews", headers=ONBOARDING, json={
        "decision": "approve", "items": ["c"], "note": "ok", "reviewer": "x"}), 403)
    viewer = Actor(kind="staff", name="victor", tenant="default", role="viewer")
    with casework_app.app_context(), pytest.raises(Forbidden):
        casework_app.extensions["trace30.gateway"].casework.decide(
            TRADER, viewer, reviewer="staff:victor", decision="approve", items=["c"],
            note="ok")
    assert evidence(casework_app).reviews(TRADER, tenant="default") == []


def test_another_tenants_trader_is_404(gateway_config: dict) -> None:
    keys = [{"id": "shop", "key": API_KEY, "scopes": ["onboarding"], "webhook_url": HOOK_URL},
            {"id": "staff", "key": OPS_KEY, "scopes": ["ops", "batch"]},
            {"id": "other-ops", "key": "other-ops-key", "scopes": ["ops"], "tenant": "other"}]
    app = create_app({**gateway_config, "GATEWAY_API_KEYS": json.dumps(keys)})
    try:
        api = app.test_client()
        needs_review(api)
        other = {"Authorization": "Bearer other-ops-key"}
        for path, body in ((f"/v1/traders/{TRADER}/reviews",
                            {"decision": "approve", "items": ["c"], "note": "ok",
                             "reviewer": "x"}),
                           (f"/v1/traders/{TRADER}/corrections",
                            {"items": ["c"], "reasons": "fix it"}),
                           (f"/v1/traders/{TRADER}/suspension", None),
                           (f"/v1/traders/{TRADER}/reinstatement", None)):
            problem(api.post(path, json=body, headers=other), 404)
        assert evidence(app).reviews(TRADER, tenant="default") == []
        statement = review(api, decision="reject", note="no").get_json()["verification"][
            "statement"]
        problem(api.get(f"/v1/statements/{statement['id']}", headers=other), 404)
        problem(api.post(f"/v1/traders/{TRADER}/complaints", headers=other,
                         json={"statement_id": statement["id"], "text": "x"}), 404)
        complaint = api.post(f"/v1/traders/{TRADER}/complaints", headers=ONBOARDING,
                             json={"statement_id": statement["id"], "text": "x"}).get_json()
        problem(api.post(f"/v1/complaints/{complaint['id']}/decision", headers=other,
                         json={"outcome": "upheld", "note": "x", "decided_by": "z"}), 404)
        assert evidence(app).complaint(complaint["id"], tenant="default")["status"] == "open"
    finally:
        shutdown(app)


def test_a_failing_webhook_write_rolls_the_decision_back(
        casework_app: Flask, casework_api: FlaskClient,
        monkeypatch: pytest.MonkeyPatch) -> None:
    automated = needs_review(casework_api)

    def broken(self: Transaction, **_: object) -> str:
        raise RuntimeError("outbox down")

    monkeypatch.setattr(Transaction, "enqueue_webhook", broken)
    with pytest.raises(RuntimeError):
        review(casework_api)
    log = evidence(casework_app)
    with log.engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(reviews_table)).scalar() == 0
    assert log.current(TRADER, tenant="default").id == automated["id"]
    assert log.actions(TRADER, tenant="default") == []
    assert len(log.history(TRADER, tenant="default")) == 1


def test_the_casework_on_both_databases(gateway_config: dict, database_url: str) -> None:
    """A decision, the approval kept, a correction and its statement, a complaint, the purge:
    on SQLite and PostgreSQL (row locks, JSON and date columns)."""
    app = create_app({**gateway_config, "DATABASE_URL": database_url,
                      "GATEWAY_API_KEYS": json.dumps([
                          {"id": "shop", "key": API_KEY, "scopes": ["onboarding"],
                           "webhook_url": HOOK_URL},
                          {"id": "staff", "key": OPS_KEY, "scopes": ["ops", "batch"]}])})
    try:
        api = app.test_client()
        needs_review(api)
        passport = add_document(app)
        approved = review(api, items=["b", "c"], document_ids=[passport])
        assert approved.status_code == 201, approved.get_json()
        again = verify(api, submission(trader_id=TRADER))
        assert again["approval_kept"]["review_id"] == approved.get_json()["review"]["id"]
        corrected = api.post(f"/v1/traders/{TRADER}/corrections", headers=OPS,
                             json={"items": ["a"], "reasons": "New address?"})
        assert corrected.status_code == 201
        statement_id = corrected.get_json()["statement"]["id"]
        assert api.get(f"/v1/statements/{statement_id}",
                       headers=OPS).get_json()["kind"] == "correction_request"
        complaint = api.post(f"/v1/traders/{TRADER}/complaints", headers=ONBOARDING,
                             json={"statement_id": statement_id, "text": "Unchanged."})
        assert complaint.status_code == 201
        counts = evidence(app).purge_trader(TRADER, tenant="default")
        assert counts["reviews"] == 1 and counts["statements"] == 1
        assert counts["complaints"] == 1 and counts["documents"] == 1
    finally:
        shutdown(app)
