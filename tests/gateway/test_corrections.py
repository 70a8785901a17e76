"""Correction and suspension (Art 30(3), issue 12 point 4): active → correction_requested →
suspended → reinstated, each with its webhook; invalid moves are 409 naming the state."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient

from services.gateway.verifications import RetryLoop
from tests.gateway.casework_util import (
    GOOD,
    events,
    evidence,
    hooks,
    needs_review,
    problem,
    review,
    verify,
)
from tests.gateway.conftest import ONBOARDING, OPS

SHOP = GOOD["trader_id"]


def correct(api: FlaskClient, trader_id: str = SHOP, **body: object):
    data = {"items": ["a", "d"], "reasons": "The registered address changed: give the new one "
            "and a register extract.", **body}
    return api.post(f"/v1/traders/{trader_id}/corrections", json=data, headers=OPS)


def state(api: FlaskClient, trader_id: str = SHOP) -> dict:
    return api.get(f"/v1/traders/{trader_id}", headers=ONBOARDING).get_json()["trader"]


def test_staff_request_a_correction_then_the_suspension_comes_due_and_is_confirmed(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    verify(casework_api, GOOD)
    assert state(casework_api)["state"] == "active"
    due = datetime.now(UTC) + timedelta(seconds=1)
    resp = correct(casework_api, due_at=due.isoformat())
    assert resp.status_code == 201, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "correction_requested"
    assert body["correction"]["items"] == ["a", "d"]
    assert body["correction"]["reasons"].startswith("The registered address")
    assert body["correction"]["due_at"] == due.isoformat(timespec="seconds").replace(
        "+00:00", "Z")
    shown = state(casework_api)
    assert shown["state"] == "correction_requested" and shown["correction"]["items"] == [
        "a", "d"]
    hook = hooks(casework_app, SHOP)[-1]
    assert hook["event"] == "trader.correction_requested"
    assert hook["statement"] == body["statement"]
    statement = evidence(casework_app).statement(body["statement"]["id"], tenant="default")
    assert statement["kind"] == "correction_request" and statement["decided_by"] == (
        "client:staff")
    assert evidence(casework_app).actions(SHOP, tenant="default")[0]["action"] == (
        "request_correction")

    early = problem(casework_api.post(f"/v1/traders/{SHOP}/suspension", headers=ONBOARDING),
                    409)
    assert "not due yet" in early["detail"]
    problem(correct(casework_api), 409)  # one correction at a time

    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
    loop = RetryLoop(casework_app.extensions["trace30.gateway"])
    loop.run_once()
    loop.run_once()  # once, not once a pass
    due_hooks = [h for h in hooks(casework_app, SHOP) if h["event"] == "trader.suspension_due"]
    assert len(due_hooks) == 1
    assert due_hooks[0]["verification"]["correction"]["statement"] == body["statement"]
    assert due_hooks[0]["verification"]["correction"]["items"] == ["a", "d"]
    assert due_hooks[0]["verification"]["correction"]["staff_reasons"].startswith(
        "The registered address")

    resp = casework_api.post(f"/v1/traders/{SHOP}/suspension", headers=ONBOARDING)
    assert resp.status_code == 200, resp.get_json()
    suspended = resp.get_json()
    assert suspended["state"] == "suspended" and suspended["suspended_at"]
    hook = hooks(casework_app, SHOP)[-1]
    assert hook["event"] == "trader.suspended" and hook["statement"] == suspended["statement"]
    assert evidence(casework_app).statement(suspended["statement"]["id"],
                                            tenant="default")["kind"] == "suspension"
    again = problem(casework_api.post(f"/v1/traders/{SHOP}/suspension", headers=ONBOARDING),
                    409)
    assert "suspended" in again["detail"]

    # the trader is verified (its data never failed a check): staff lift the suspension
    problem(casework_api.post(f"/v1/traders/{SHOP}/reinstatement", headers=ONBOARDING), 403)
    resp = casework_api.post(f"/v1/traders/{SHOP}/reinstatement", headers=OPS)
    assert resp.status_code == 200 and resp.get_json()["state"] == "reinstated"
    assert events(casework_app, SHOP)[-1] == "trader.reinstated"
    shown = state(casework_api)
    assert shown["state"] == "reinstated" and shown["correction"] is None
    assert "reinstated" in problem(
        casework_api.post(f"/v1/traders/{SHOP}/reinstatement", headers=OPS), 409)["detail"]
    # from reinstated, a new correction may be asked
    assert correct(casework_api).status_code == 201


def test_invalid_moves_are_409_naming_the_state(casework_api: FlaskClient) -> None:
    verify(casework_api, GOOD)
    active = problem(casework_api.post(f"/v1/traders/{SHOP}/suspension", headers=OPS), 409)
    assert "active" in active["detail"]
    assert "active" in problem(
        casework_api.post(f"/v1/traders/{SHOP}/reinstatement", headers=OPS), 409)["detail"]


def test_a_suspended_trader_is_reinstated_only_once_verified(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    needs_review(casework_api)
    from tests.gateway.casework_util import TRADER

    due = datetime.now(UTC) + timedelta(seconds=1)
    assert correct(casework_api, TRADER, due_at=due.isoformat()).status_code == 201
    time.sleep(max(0.0, (due - datetime.now(UTC)).total_seconds()) + 0.1)
    assert casework_api.post(f"/v1/traders/{TRADER}/suspension",
                             headers=ONBOARDING).status_code == 200
    conflict = problem(casework_api.post(f"/v1/traders/{TRADER}/reinstatement", headers=OPS),
                       409)
    assert "needs_review" in conflict["detail"]
    # a verified verdict does not lift a suspension by itself
    assert review(casework_api, TRADER).status_code == 201
    assert state(casework_api, TRADER)["state"] == "suspended"
    assert casework_api.post(f"/v1/traders/{TRADER}/reinstatement",
                             headers=OPS).status_code == 200


def test_a_verification_that_puts_the_trader_in_order_closes_the_correction(
        casework_app: Flask, casework_api: FlaskClient) -> None:
    verify(casework_api, GOOD)
    assert correct(casework_api).status_code == 201
    resp = casework_api.post(f"/v1/traders/{SHOP}/reverify", headers=OPS)
    assert resp.get_json()["verdict"] == "verified"
    shown = state(casework_api)
    assert shown["state"] == "active" and shown["correction"] is None
    assert evidence(casework_app).correction_due(SHOP, tenant="default") is None


def test_bad_correction_requests_are_400(casework_app: Flask,
                                         casework_api: FlaskClient) -> None:
    verify(casework_api, GOOD)
    assert "items" in problem(correct(casework_api, items=["z"]), 400)["errors"]
    assert "reasons" in problem(correct(casework_api, reasons=" "), 400)["errors"]
    past = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert "due_at" in problem(correct(casework_api, due_at=past), 400)["errors"]
    problem(casework_api.post(f"/v1/traders/{SHOP}/corrections", headers=ONBOARDING,
                              json={"items": ["a"], "reasons": "x"}), 403)
    problem(correct(casework_api, "nobody"), 404)
    assert state(casework_api)["state"] == "active"
    assert evidence(casework_app).statements(SHOP, tenant="default") == []
