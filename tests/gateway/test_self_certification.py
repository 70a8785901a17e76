# ruff: noqa: F811 (pytest fixtures)
"""The self-certification on record (30(1)(e)) through the gateway: ``accepted_at`` stamped on
receipt when the client leaves it out (and left out of the fingerprint, so the verdict cache
still hits), ``text_version`` stored and shown on the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import submissions
from tests.conftest import Suite
from tests.gateway.test_dashboard import page, sign_in
from tests.gateway.test_flow import OPS, post, submission, upstream_calls

CN_ACCOUNT = "6222021001043210123"
CN_PAYMENT = {"kind": "account", "account_number": "6222 0210 0104 3210 123",
              "bic": "BKCHCNBJ", "country_code": "CN",
              "account_holder": "Boulangerie Martin SAS"}
WALLET = {"kind": "other", "reference": "payouts-qzx-77@wallet.example", "provider": "PayPal",
          "account_holder": "Boulangerie Martin SAS"}


def codes(body: dict) -> set[str]:
    return {r["code"] for r in body["reasons"]}


# --- item 5: the self-certification on record -----------------------------------------------


def test_accepted_at_is_stamped_on_receipt_and_the_cache_still_hits(
        gateway: Flask, client: FlaskClient, suite: Suite) -> None:
    sub = submission(self_certification={"accepted": True, "text_version": "2026-03 v2"})
    before = datetime.now(UTC).replace(microsecond=0)
    first = post(client, sub, wait=15).get_json()
    after = datetime.now(UTC)
    cert = first["evidence"]["self_certification"]
    assert cert["accepted"] is True and cert["text_version"] == "2026-03 v2"
    assert cert["accepted_at_source"] == "gateway"
    assert before <= datetime.fromisoformat(cert["accepted_at"]) <= after
    log = gateway.extensions["trace30.gateway"].evidence
    assert log.private_submission(first["id"])["self_certification"]["accepted_at"] == \
        cert["accepted_at"]
    assert log.get(first["id"]).submission["self_certification"]["accepted_at_source"] == \
        "gateway"
    # the same submission again, without accepted_at: the cached verdict, no upstream call
    calls = upstream_calls(suite)
    again = post(client, sub, wait=15).get_json()
    assert again["cached"] is True and again["id"] == first["id"]
    assert upstream_calls(suite) == calls
    # a re-verification of the stored (stamped) submission keeps the stamp and the fingerprint
    reverified = client.post(f"/v1/traders/{sub['trader_id']}/reverify",
                             headers={**OPS, "Prefer": "wait=15"}).get_json()
    assert reverified["id"] != first["id"]
    assert reverified["fingerprint"] == first["fingerprint"]
    assert reverified["evidence"]["self_certification"] == cert
    # ... so the client's next submission finds the re-verification's cached verdict
    third = post(client, sub, wait=15).get_json()
    assert third["cached"] is True and third["id"] == reverified["id"]
    # the mark is the gateway's own: a client cannot send it
    forged = {**sub["self_certification"], "accepted_at_source": "gateway",
              "accepted_at": "2026-11-28T10:00:00+00:00"}
    resp = post(client, submission(self_certification=forged))
    assert resp.status_code == 400
    assert set(resp.get_json()["errors"]["self_certification"]) == {"accepted_at_source"}


def test_accepted_at_given_by_the_client_is_kept(client: FlaskClient) -> None:
    body = post(client, submission(), wait=15).get_json()
    assert body["evidence"]["self_certification"] == {
        "accepted": True, "accepted_at": "2026-11-28T10:00:00+00:00",
        "accepted_at_source": "client", "text_version": None}
    other_time = submission(self_certification={"accepted": True,
                                                "accepted_at": "2026-11-29T10:00:00+00:00"})
    assert post(client, other_time, wait=15).get_json()["cached"] is False


def test_a_refusal_is_not_stamped(client: FlaskClient) -> None:
    body = post(client, submission(self_certification={"accepted": False}),
                wait=15).get_json()
    assert body["evidence"]["self_certification"] == {
        "accepted": False, "accepted_at": None, "accepted_at_source": None,
        "text_version": None}


@pytest.mark.parametrize("version", ["", "  ", "v1\nv2", "x" * 65, 3])
def test_bad_text_version_is_a_400_naming_it(client: FlaskClient, version: object) -> None:
    resp = post(client, submission(self_certification={"accepted": True,
                                                       "text_version": version}))
    assert resp.status_code == 400
    errors = resp.get_json()["errors"]["self_certification"]
    assert set(errors) == {"text_version"}
    assert "Unknown field." not in errors["text_version"]  # a known field, refused for its value


def test_dashboard_shows_the_self_certification(client: FlaskClient) -> None:
    sub = submission(self_certification={"accepted": True, "text_version": "tos-7"})
    body = post(client, sub, wait=15).get_json()
    assert sign_in(client).status_code == 303
    stamped = body["evidence"]["self_certification"]["accepted_at"]
    for url in (f"/ops/verifications/{body['id']}", f"/ops/traders/{sub['trader_id']}"):
        html = page(client, url)
        assert '<code class="text-version">tos-7</code>' in html, url
        assert "the time the gateway received the submission" in html, url
        assert stamped[:10] in html, url
    post(client, submission(trader_id="given-time"), wait=15)
    html = page(client, "/ops/traders/given-time")
    assert "as given by the marketplace" in html and "2026-11-28" in html
    assert "text version <span class=\"muted\">not given</span>" in html


def test_stamp_is_left_out_of_the_fingerprint() -> None:
    sub = submissions.normalise(submission(self_certification={"accepted": True}))
    stamped = submissions.stamp(sub, datetime(2026, 11, 30, 14, 0, tzinfo=UTC))
    assert stamped["self_certification"]["accepted_at"] == "2026-11-30T14:00:00+00:00"
    assert submissions.fingerprint(stamped, "t") == submissions.fingerprint(sub, "t")
    assert submissions.stamp(stamped, datetime.now(UTC)) == stamped
    given = submissions.normalise(submission())
    assert submissions.fingerprint(submissions.stamp(given, datetime.now(UTC)), "t") == \
        submissions.fingerprint(given, "t")
    assert submissions.fingerprint(given, "t") != submissions.fingerprint(sub, "t")

