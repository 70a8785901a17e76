"""The gateway's public routes: verifications and traders.

``POST /v1/verifications`` honours ``Prefer: wait=N`` (RFC 7240): the verdict within N seconds
is a 200; otherwise a 202 with ``Location: /v1/verifications/{id}``, and the result goes to the
client's webhook when it settles.

Every route is scoped to the calling client's tenant (``g.client.tenant``): a verification or a
trader of another tenant is a 404, exactly like one that does not exist, so that a client
cannot even learn that another marketplace has a trader with a given id.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from flask import Response, current_app, g, request, url_for

from services.gateway import actors
from services.gateway.access import require
from services.gateway.evidence import EndBeforeFirstVerification
from services.gateway.policy import DEFAULT_ACTIONS
from services.gateway.reasons import CATALOGUE
from services.gateway.schemas import (
    EndRelationshipSchema,
    HistoryQuerySchema,
    HistorySchema,
    RelationshipEndSchema,
    SubmissionSchema,
    VerificationSchema,
)
from services.gateway.sealing import SealingError
from services.gateway.verifications import BodyIndex, Outcome, Verifier
from shared import retention
from shared.errors import Conflict, NotFound
from shared.logs import current_request_id
from shared.openapi import Blueprint

bp = Blueprint("gateway", __name__, url_prefix="/v1",
               description="Trader verifications and their traceability verdicts")

EXTENSION = "trace30.gateway"
_WAIT = re.compile(r"(?:^|[,;\s])wait\s*=\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def _verifier() -> Verifier:
    verifier: Verifier = current_app.extensions[EXTENSION]
    return verifier


def prefer_wait(header: str | None, default: float, maximum: float) -> float:
    """Seconds to wait from a ``Prefer`` header (``respond-async`` alone means 0).

    >>> prefer_wait("wait=3", 5, 30), prefer_wait("respond-async", 5, 30), prefer_wait(None, 5, 30)
    (3.0, 0.0, 5)
    >>> prefer_wait("respond-async, wait=100", 5, 30)
    30
    """
    if not header:
        return default
    match = _WAIT.search(header)
    if match:
        return min(float(match.group(1)), maximum)
    if "respond-async" in header.lower():
        return 0.0
    return default


def _wait_s() -> float:
    cfg = current_app.config
    return prefer_wait(request.headers.get("Prefer"), cfg["GATEWAY_DEFAULT_WAIT_S"],
                       cfg["GATEWAY_MAX_WAIT_S"])


def _answer(outcome: Outcome, wait_s: float) -> Any:
    headers = {"Preference-Applied": f"wait={wait_s:g}"}
    vid = outcome.result.get("id")
    if vid:
        location = url_for("gateway.get_verification", verification_id=vid)
        headers["Location" if outcome.status == 202 else "Content-Location"] = location
    if outcome.cached_json is not None:
        # Stored as VerificationSchema dumped it: sent as it is, without decoding it again.
        return Response(outcome.cached_json[1], 200, headers, mimetype="application/json")
    return outcome.result, outcome.status, headers


def _body_key() -> bytes:
    """The request body's :class:`BodyIndex` key (computed once per request)."""
    if "body_key" not in g:
        g.body_key = BodyIndex.key(g.client.id, request.mimetype, request.get_data(cache=True))
    key: bytes = g.body_key
    return key


@bp.before_request
def _resubmission() -> Any:
    """A resubmission of the very same bytes by the same client is answered from the verdict
    cache before the body is parsed again (the onboarding hook retrying a signup)."""
    if (request.endpoint != "gateway.create_verification"
            or "onboarding" not in g.client.scopes):
        return None  # the view and its checks answer
    outcome = _verifier().cached_body(_body_key())
    return _answer(outcome, _wait_s()) if outcome is not None else None


@bp.post("/verifications")
@bp.arguments(SubmissionSchema())
@bp.response(200, VerificationSchema())
@bp.alt_response(202, schema=VerificationSchema(), description="Still running: poll Location")
@require("onboarding")
def create_verification(submission: dict[str, Any]) -> Any:
    """Verify a trader: VAT number, business register and payment account, in parallel."""
    wait_s = _wait_s()
    outcome = _verifier().submit(submission, g.client.id, tenant=g.client.tenant,
                                 wait_s=wait_s, request_id=current_request_id(),
                                 body_key=_body_key())
    return _answer(outcome, wait_s)


@bp.get("/verifications/<verification_id>")
@bp.response(200, VerificationSchema())
@require("onboarding", "ops", "batch")
def get_verification(verification_id: str) -> dict[str, Any]:
    """One verification, running or settled."""
    record = _verifier().evidence.get(verification_id)
    if record is None or record.tenant_id != g.client.tenant:
        raise NotFound(f"No verification {verification_id}.")
    return _verifier().view(record)


@bp.get("/traders/<trader_id>")
@bp.response(200, VerificationSchema())
@require("onboarding", "ops", "batch")
def get_trader(trader_id: str) -> dict[str, Any]:
    """The trader's current verdict: its latest settled verification."""
    record = _verifier().evidence.current(trader_id, tenant=g.client.tenant)
    if record is None:
        raise NotFound(f"No settled verification for trader {trader_id}.")
    return _verifier().view(record)


@bp.get("/traders/<trader_id>/history")
@bp.arguments(HistoryQuerySchema(), location="query")
@bp.response(200, HistorySchema())
@require("ops", "batch")
def trader_history(query: dict[str, Any], trader_id: str) -> dict[str, Any]:
    """Every verification of the trader, newest first, with its evidence."""
    records = _verifier().evidence.history(trader_id, limit=query["limit"],
                                           tenant=g.client.tenant)
    if not records:
        raise NotFound(f"No verification for trader {trader_id}.")
    return {"trader_id": trader_id, "verifications": [_verifier().view(r) for r in records]}


@bp.post("/traders/<trader_id>/reverify")
@bp.response(200, VerificationSchema())
@bp.alt_response(202, schema=VerificationSchema(), description="Still running: poll Location")
@require("batch", "ops")
def reverify_trader(trader_id: str) -> Any:
    """Verify the trader's last submission again, now, without the cache."""
    wait_s = _wait_s()
    try:
        outcome = _verifier().reverify(trader_id, g.client.id, tenant=g.client.tenant,
                                       wait_s=wait_s, request_id=current_request_id())
    except SealingError as e:
        raise Conflict("The trader's last submission cannot be unsealed with the configured "
                       "evidence sealing keys; configure the key it was sealed with.") from e
    if outcome is None:
        raise NotFound(f"No verification for trader {trader_id}.")
    _verifier().evidence.record_action(tenant=g.client.tenant, actor=actors.current().label,
                                       action="reverify",
                                       trader_id=trader_id,
                                       verification_id=outcome.result.get("id"))
    return _answer(outcome, wait_s)


@bp.post("/traders/<trader_id>/end")
@bp.arguments(EndRelationshipSchema(), required=False)
@bp.response(200, RelationshipEndSchema())
@require("onboarding", "ops")
def end_relationship(body: dict[str, Any], trader_id: str) -> dict[str, Any]:
    """Record that the relationship with the trader ended (DSA Art 30(5)).

    The evidence is kept for ``TRACE30_RETENTION_MONTHS`` calendar months more: from
    ``purge_after`` (:func:`shared.retention.purge_after`) on, ``trace30 purge`` deletes it.
    A later verification of the trader reopens the relationship.
    """
    ended_at = (body.get("ended_at") or datetime.now(UTC)).astimezone(UTC)
    try:
        known = _verifier().evidence.end_relationship(
            trader_id, ended_at, actor=actors.current().label, tenant=g.client.tenant)
    except EndBeforeFirstVerification as e:
        raise e.bad_request("ended_at", e.first.isoformat()) from e
    if not known:
        raise NotFound(f"No verification for trader {trader_id}.")
    return {"trader_id": trader_id, "ended_at": ended_at,
            "purge_after": retention.purge_after(ended_at, current_app.config["RETENTION_MONTHS"])}


@bp.get("/reasons")
@require("onboarding", "ops", "batch")
def reasons() -> dict[str, Any]:
    """The stable list of reason codes, with their Art 30(1) item, and the verdict policy in
    force: each code's ``action`` (``reject``, ``review``, ``info``, or ``pending`` for an
    upstream fault) and ``severity`` under it, its ``default_action``, and the policy's
    SHA-256 (stored with each verdict as ``evidence.policy_sha256``)."""
    policy = _verifier().policy
    return {"policy": policy.describe(),
            "reasons": [{**vars(r), "severity": policy.severity(r.code),
                         "action": policy.actions[r.code],
                         "default_action": DEFAULT_ACTIONS[r.code]}
                        for r in CATALOGUE.values()]}
