"""Helpers of the casework tests (review decisions, corrections, statements, complaints; their
gateway is the ``casework_app`` fixture of ``tests/gateway/conftest.py``): a trader that needs
review (its payment account is shared with another trader), the webhooks in the outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from services.gateway.evidence import EvidenceLog, webhook_deliveries_table
from services.gateway.evidence.schema import traders_table
from tests.gateway.conftest import ONBOARDING, OPS
from tests.gateway.test_flow import GOOD, submission

#: Never called: the sender does not run in these tests; the outbox's rows are read.
HOOK_URL = "http://127.0.0.1:9/hooks"
TRADER = "atelier-dupont"
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


def pass_correction_time(app: Flask, trader_id: str = TRADER) -> None:
    """The clock passes the trader's correction due time: the stored due time is moved to a
    minute ago, as if the days had gone by (no sleeping, no race with a due time seconds
    away)."""
    with evidence(app).engine.begin() as conn:
        moved = conn.execute(sa.update(traders_table)
                             .where(traders_table.c.trader_id == trader_id)
                             .values(correction_due_at=datetime.now(UTC)
                                     - timedelta(minutes=1)))
        assert moved.rowcount == 1
