"""Payment accounts without an IBAN (``payment.kind`` ``account`` or ``other``) through the
gateway, against the real services: accepted, sent to review, linked, masked, sealed."""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import text

from services.gateway.verdicts import decide
from tests.conftest import Suite
from tests.gateway import service_answers
from tests.gateway.test_dashboard import page, sign_in
from tests.gateway.test_flow import post, submission, upstream_calls

CN_ACCOUNT = "6222021001043210123"
CN_PAYMENT = {"kind": "account", "account_number": "6222 0210 0104 3210 123",
              "bic": "BKCHCNBJ", "country_code": "CN",
              "account_holder": "Boulangerie Martin SAS"}
WALLET = {"kind": "other", "reference": "payouts-qzx-77@wallet.example", "provider": "PayPal",
          "account_holder": "Boulangerie Martin SAS"}


def codes(body: dict) -> set[str]:
    return {r["code"] for r in body["reasons"]}


# --- item 6: payment accounts without an IBAN -----------------------------------------------


def test_account_without_iban_is_accepted_and_sent_to_review(client: FlaskClient) -> None:
    resp = post(client, submission(payment=CN_PAYMENT), wait=15)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["verdict"] == "needs_review"
    assert body["items"]["30(1)(c)"] == "unverified"
    assert codes(body) & {"IBAN_INVALID", "PAYMENT_ACCOUNT_INVALID"} == set()
    [r] = [r for r in body["reasons"] if r["code"] == "PAYMENT_ACCOUNT_NOT_IBAN"]
    assert r["item"] == "30(1)(c)" and r["severity"] == "warning" and r["detail"] == "account"
    pay = body["checks"]["payment"]
    assert pay["kind"] == "account" and pay["status"] == "valid"
    assert pay["account_masked"] == "****0123" and pay["account_fingerprint"]
    assert pay["holder_match"]["result"] == "match"
    assert CN_ACCOUNT not in resp.get_data(as_text=True)


def test_wallet_is_accepted_and_sent_to_review(client: FlaskClient, suite: Suite) -> None:
    before = upstream_calls(suite)[2]
    body = post(client, submission(payment=WALLET), wait=15).get_json()
    assert body["verdict"] == "needs_review"
    assert body["items"]["30(1)(c)"] == "unverified"
    assert {"PAYMENT_ACCOUNT_NOT_IBAN"} <= codes(body)
    assert body["checks"]["payment"]["kind"] == "other"
    assert upstream_calls(suite)[2] == before  # Verification of Payee is for IBANs only


def test_bic_of_another_country_is_a_payment_account_error_not_iban_invalid(
        client: FlaskClient) -> None:
    body = post(client, submission(payment={**CN_PAYMENT, "bic": "CHASUS33"}),
                wait=15).get_json()
    assert body["verdict"] == "rejected"
    assert "PAYMENT_ACCOUNT_INVALID" in codes(body) and "IBAN_INVALID" not in codes(body)
    assert body["items"]["30(1)(c)"] == "failed"


@pytest.mark.parametrize(("payment", "fields"), [
    ({"kind": "account", "account_number": CN_ACCOUNT, "bic": "BKCHCNBJ"}, {"country_code"}),
    ({"kind": "account", "iban": "FR7630004000030001234567897"},
     {"iban", "account_number", "bic", "country_code"}),
    ({"kind": "other"}, {"reference"}),
    ({"kind": "paypal", "reference": "x"}, {"kind"}),
    ({"iban": "FR7630004000030001234567897", "reference": "x"}, {"reference"}),
])
def test_payment_fields_of_the_wrong_kind_are_a_400_naming_them(
        client: FlaskClient, payment: dict, fields: set[str]) -> None:
    resp = post(client, submission(payment=payment))
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    errors = resp.get_json()["errors"]["payment"]
    assert set(errors) == fields
    assert all("Unknown field." not in errors[f] for f in fields)  # the fields are known
    assert CN_ACCOUNT not in resp.get_data(as_text=True)


def test_the_same_account_at_two_traders_is_linked(client: FlaskClient) -> None:
    post(client, submission(trader_id="first-shop", payment=CN_PAYMENT), wait=15)
    # the same account written otherwise (hyphens, the BIC's XXX branch) by another trader
    again = {**CN_PAYMENT, "account_number": "6222-0210-0104-3210-123", "bic": "BKCHCNBJXXX"}
    body = post(client, submission(trader_id="second-shop", payment=again), wait=15).get_json()
    assert "ACCOUNT_SHARED" in codes(body)
    [link] = body["evidence"]["linked_traders"]
    assert link["trader_id"] == "first-shop" and "account" in link["via"]
    other = post(client, submission(trader_id="third-shop", payment=WALLET), wait=15).get_json()
    assert "ACCOUNT_SHARED" not in codes(other)


def test_account_number_is_masked_for_staff_and_sealed(gateway: Flask,
                                                        client: FlaskClient) -> None:
    body = post(client, submission(payment=CN_PAYMENT), wait=15).get_json()
    wallet = post(client, submission(trader_id="wallet-shop", payment=WALLET),
                  wait=15).get_json()
    log = gateway.extensions["trace30.gateway"].evidence
    with log.engine.connect() as conn:
        rows = conn.execute(text("select * from verifications")).fetchall()
    dump = json.dumps([list(map(str, r)) for r in rows])
    assert CN_ACCOUNT not in dump and CN_ACCOUNT[4:] not in dump
    assert "qzx-77" not in dump
    record = log.get(body["id"])
    assert record.submission["payment"]["account_number"] == "*" * 15 + "0123"
    assert log.private_submission(body["id"])["payment"]["account_number"] == CN_ACCOUNT
    assert log.private_submission(wallet["id"])["payment"]["reference"] == WALLET["reference"]
    assert sign_in(client).status_code == 303
    html = page(client, f"/ops/verifications/{body['id']}")
    assert "account number and BIC, no IBAN" in html and "****0123" in html
    assert CN_ACCOUNT not in html and CN_ACCOUNT[4:] not in html
    assert "qzx-77" not in page(client, f"/ops/verifications/{wallet['id']}")


def test_kind_iban_said_or_not_is_the_same_submission(client: FlaskClient) -> None:
    first = post(client, submission(), wait=15).get_json()
    said = submission()
    said["payment"] = {**said["payment"], "kind": "iban"}
    again = post(client, said, wait=15).get_json()
    assert again["cached"] is True and again["id"] == first["id"]


def test_decide_keeps_iban_invalid_for_ibans() -> None:
    sub = submission()
    checks: dict[str, Any] = service_answers.checks(
        None, None, {"status": "invalid", "errors": ["IBAN_CHECKSUM"]})
    assert "IBAN_INVALID" in codes(vars(decide(sub, checks)))
    checks["payment"]["kind"] = "account"
    decision = decide(sub, checks)
    assert "PAYMENT_ACCOUNT_INVALID" in codes(vars(decision))
    assert "IBAN_INVALID" not in codes(vars(decision))
