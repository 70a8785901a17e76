"""Statements of reasons (DSA Art 17, issue 12 point 5): stored for every rejection, correction
request and suspension; served as JSON and as a printable HTML page; in the trader's
language."""

from __future__ import annotations

from flask import Flask
from flask.testing import FlaskClient

from tests.gateway.casework_util import (
    GOOD,
    TRADER,
    evidence,
    hooks,
    problem,
    submission,
    verify,
)
from tests.gateway.conftest import ONBOARDING, OPS

REFUSED = {"accepted": False}


def only_statement(app: Flask, trader_id: str) -> dict:
    rows = evidence(app).statements(trader_id, tenant="default")
    assert len(rows) == 1
    return rows[0]


def test_an_automated_rejection_has_a_statement_with_ground_sources_and_redress(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    rejected = verify(casework_api, submission(trader_id=TRADER, self_certification=REFUSED))
    assert rejected["verdict"] == "rejected"
    row = only_statement(casework_app, TRADER)
    assert row["kind"] == "rejection" and row["automated"] is True
    assert row["verification_id"] == rejected["id"]
    resp = casework_api.get(f"/v1/statements/{row['id']}", headers=ONBOARDING)
    assert resp.status_code == 200 and resp.mimetype == "application/json"
    s = resp.get_json()
    assert s["id"] == row["id"] and s["url"] == f"/v1/statements/{row['id']}"
    assert s["automated"] is True and s["decided_by"] is None and s["locale"] == "en"
    assert s["legal_ground"]["provision"] == "DSA Art 30(3)"
    assert s["legal_ground"]["items"] == ["30(1)(e)"]
    assert "Article 30(3)" in s["legal_ground"]["text"]
    assert [f["code"] for f in s["facts"]] == ["SELF_CERTIFICATION_NOT_ACCEPTED"]
    assert s["facts"][0]["message"].startswith("The trader did not accept")
    sources = {src["source"]: src for src in s["sources"]}
    assert sources["trace30 verification"]["reference"] == rejected["id"]
    assert sources["trace30 verification"]["checked_at"] == rejected["checked_at"]
    vat = [src for src in s["sources"] if "VIES" in src["source"] or "vies" in src["source"]]
    assert vat and vat[0]["checked_at"], s["sources"]
    assert len(s["sources"]) == 4  # the verification, VAT, register, payee
    assert "Article 20" in s["redress"]["complaint"]["text"] and row["id"] in (
        s["redress"]["complaint"]["text"])
    assert s["redress"]["complaint"]["url"] == f"/v1/traders/{TRADER}/complaints"
    assert "Article 21" in s["redress"]["out_of_court_and_judicial"]
    assert "automated" in s["automated_means"]


def test_the_verdict_changed_webhook_of_a_rejection_carries_its_statement(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    verify(casework_api, GOOD)
    verify(casework_api, submission(self_certification=REFUSED))
    hook = hooks(casework_app, GOOD["trader_id"])[-1]
    assert hook["event"] == "verdict.changed"
    statement = only_statement(casework_app, GOOD["trader_id"])
    ref = {"id": statement["id"], "url": f"/v1/statements/{statement['id']}"}
    assert hook["verification"]["statement"] == ref
    assert hook["verification"]["correction"]["statement"] == ref


def test_the_statement_as_a_printable_page(casework_app: Flask,
                                           casework_api: FlaskClient) -> None:
    verify(casework_api, submission(trader_id=TRADER, self_certification=REFUSED))
    row = only_statement(casework_app, TRADER)
    resp = casework_api.get(f"/v1/statements/{row['id']}",
                            headers={**OPS, "Accept": "text/html"})
    assert resp.status_code == 200 and resp.mimetype == "text/html"
    html = resp.get_data(as_text=True)
    assert "<script" not in html.lower()
    assert "<h1>Statement of reasons</h1>" in html
    assert "DSA Art 30(3); 30(1)(e)" in html and "SELF_CERTIFICATION_NOT_ACCEPTED" in html
    assert "How to complain" in html and row["id"] in html
    assert "default-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Cache-Control"] == "no-store"


def test_statements_are_in_the_traders_language(casework_app: Flask,
                                                casework_api: FlaskClient) -> None:
    rejected = verify(casework_api, submission(trader_id=TRADER, self_certification=REFUSED,
                                               locale="de-AT"))
    assert rejected["reasons"][0]["message"].startswith("Der Unternehmer hat")
    row = only_statement(casework_app, TRADER)
    assert row["locale"] == "de"
    s = casework_api.get(f"/v1/statements/{row['id']}", headers=ONBOARDING).get_json()
    assert s["title"] == "Begründung"
    assert s["facts"][0]["message"].startswith("Der Unternehmer hat")
    assert "Artikel 20" in s["redress"]["complaint"]["text"]
    html = casework_api.get(f"/v1/statements/{row['id']}",
                            headers={**ONBOARDING, "Accept": "text/html"}).get_data(as_text=True)
    assert '<html lang="de">' in html and "Rechtsgrundlage" in html


def test_an_unsupported_language_falls_back_to_english_and_a_bad_tag_is_400(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    body = verify(casework_api, submission(trader_id=TRADER, self_certification=REFUSED,
                                           locale="pt-BR"))
    assert body["reasons"][0]["message"].startswith("The trader did not accept")
    resp = casework_api.post("/v1/verifications", headers=ONBOARDING,
                             json=submission(locale="not a language"))
    assert "locale" in problem(resp, 400)["errors"]


def test_another_tenants_statement_is_404(casework_app: Flask,
                                          casework_api: FlaskClient) -> None:
    problem(casework_api.get("/v1/statements/nope", headers=OPS), 404)
    verify(casework_api, submission(trader_id=TRADER, self_certification=REFUSED))
    row = only_statement(casework_app, TRADER)
    assert evidence(casework_app).statement(row["id"], tenant="other") is None


def test_a_rejection_confirmed_by_a_re_verification_is_no_new_statement(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    verify(casework_api, submission(trader_id=TRADER, self_certification=REFUSED))
    again = casework_api.post(f"/v1/traders/{TRADER}/reverify", headers=OPS).get_json()
    assert again["verdict"] == "rejected"
    only_statement(casework_app, TRADER)
