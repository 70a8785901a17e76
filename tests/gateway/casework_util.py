"""Helpers of the casework tests (review decisions, corrections, statements, complaints; their
gateway is the ``casework_app`` fixture of ``tests/gateway/conftest.py``): a trader that needs
review (its payment account is shared with another trader), the webhooks in the outbox."""

from __future__ import annotations

import copy
import json
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from services.gateway.evidence import EvidenceLog, webhook_deliveries_table
from tests.gateway.conftest import ONBOARDING, OPS

#: Never called: the sender does not run in these tests; the outbox's rows are read.
HOOK_URL = "http://127.0.0.1:9/hooks"
TRADER = "atelier-dupont"
IBAN = "FR7630004000030001234567897"

GOOD: dict[str, Any] = {
    "trader_id": "boulangerie-martin",
    "name": "Boulangerie Martin SAS",
    "address": {"street": "4 rue du Four", "postcode": "75006", "city": "Paris",
                "country_code": "FR"},
    "email": "contact@boulangerie-martin.example",
    "phone": "+33 1 42 22 00 00",
    "identification": {"type": "national_id", "reference": "FR-ID-778899"},
    "payment": {"iban": IBAN, "account_holder": "Boulangerie Martin SAS"},
    "registration": {"country_code": "FR", "number": "812345676", "kind": "siren"},
    "vat_number": "FR19812345676",
    "self_certification": {"accepted": True, "accepted_at": "2026-11-28T10:00:00+00:00"},
}


def submission(**changes: Any) -> dict[str, Any]:
    sub = copy.deepcopy(GOOD)
    for key, value in changes.items():
        if value is None:
            sub.pop(key, None)
        else:
            sub[key] = value
    return sub


def evidence(app: Flask) -> EvidenceLog:
    return app.extensions["trace30.gateway"].evidence


def verify(api: FlaskClient, body: dict[str, Any]) -> dict[str, Any]:
    resp = api.post("/v1/verifications", json=body,
                    headers={**ONBOARDING, "Prefer": "wait=15"})
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def needs_review(api: FlaskClient, trader_id: str = TRADER, **changes: Any) -> dict[str, Any]:
    """A trader whose payment account another trader uses: ``needs_review``."""
    verify(api, GOOD)
    body = verify(api, submission(trader_id=trader_id, **changes))
    assert body["verdict"] == "needs_review", body["reasons"]
    return body


def review(api: FlaskClient, trader_id: str = TRADER, **body: Any):
    data = {"decision": "approve", "items": ["c"], "note": "Account shared with the owner's "
            "other shop; checked the bank statement.", "reviewer": "alice", **body}
    return api.post(f"/v1/traders/{trader_id}/reviews", json=data, headers=OPS)


def hooks(app: Flask, trader_id: str = TRADER) -> list[dict[str, Any]]:
    """The trader's webhooks in the outbox, oldest first (their payloads)."""
    d = webhook_deliveries_table
    with evidence(app).engine.connect() as conn:
        rows = conn.execute(sa.select(d.c.payload).where(d.c.trader_id == trader_id)
                            .order_by(d.c.created_at, d.c.id)).scalars().all()
    return [p if isinstance(p, dict) else json.loads(p) for p in rows]


def events(app: Flask, trader_id: str = TRADER) -> list[str]:
    return [h["event"] for h in hooks(app, trader_id)]


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, (resp.status_code, resp.get_data(as_text=True))
    assert resp.mimetype == "application/problem+json"
    return resp.get_json()
