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

import marshmallow as ma
from flask import Response, current_app, g, render_template, request, url_for

from services.gateway import actors, cursors
from services.gateway.access import require
from services.gateway.casework_schemas import (
    ComplaintDecisionSchema,
    ComplaintOutSchema,
    ComplaintSchema,
    CorrectionSchema,
    ReviewResultSchema,
    ReviewSchema,
    StatementSchema,
    TraderStateSchema,
)
from services.gateway.evidence import EndBeforeFirstVerification
from services.gateway.policy import DEFAULT_ACTIONS
from services.gateway.reasons import CATALOGUE
from services.gateway.schemas import (
    EndRelationshipSchema,
    HistoryQuerySchema,
    HistorySchema,
    RelationshipEndSchema,
    SubmissionSchema,
    TraderListSchema,
    TradersQuerySchema,
    VerificationSchema,
)
from services.gateway.sealing import SealingError
from services.gateway.verifications import BodyIndex, Outcome, Verifier
from shared import retention
from shared.errors import BadRequest, Conflict, NotFound
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


@bp.get("/traders")
@bp.arguments(TradersQuerySchema(), location="query", unknown=ma.RAISE)
@bp.response(200, TraderListSchema())
@require("onboarding", "ops", "batch")
def list_traders(query: dict[str, Any]) -> Any:
    """The tenant's traders, least recently changed first (``updated_at``, then trader id),
    a page at a time: keyset paging, each page read from the index at the previous page's
    last trader (``next``, an opaque signed cursor valid with the same filters), however
    deep; the ``Link`` header has it too (``rel="next"``)."""
    tenant = g.client.tenant
    filters = {name: query.get(name) for name in ("verdict", "state", "country",
                                                  "needs_review", "updated_since",
                                                  "updated_until")}
    after = None
    if "cursor" in query:
        position = cursors.load("v1-traders", query["cursor"], tenant=tenant, filters=filters)
        at = cursors.timestamp(position[0] if position else None)
        if len(position) != 2 or at is None or not isinstance(position[1], str):
            raise BadRequest("The cursor is not valid.", errors={"cursor": ["Not a valid "
                                                                            "cursor."]})
        after = (at, position[1])
    rows = _verifier().evidence.trader_page(tenant=tenant, limit=query["limit"], after=after,
                                            **filters)
    following = None
    if len(rows) == query["limit"]:
        following = cursors.dump("v1-traders", tenant=tenant, filters=filters,
                                 position=[rows[-1]["updated_at"], rows[-1]["trader_id"]])
    body = {"traders": [{**row, "verdict": row.pop("current_verdict")} for row in rows],
            "next": following}
    headers = {}
    if following is not None:
        given: dict[str, Any] = {k: v for k, v in request.args.items() if k != "cursor"}
        link = url_for(".list_traders", **{**given, "cursor": following})
        headers["Link"] = f'<{link}>; rel="next"'
    return body, 200, headers


@bp.get("/traders/<trader_id>")
@bp.response(200, VerificationSchema())
@require("onboarding", "ops", "batch")
def get_trader(trader_id: str) -> dict[str, Any]:
    """The trader's current verdict: its latest settled verification."""
    record = _verifier().evidence.current(trader_id, tenant=g.client.tenant)
    if record is None:
        raise NotFound(f"No settled verification for trader {trader_id}.")
    return {**_verifier().view(record),
            "trader": _verifier().casework.trader_view(trader_id, tenant=g.client.tenant)}


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


# -- casework: review decisions, corrections and suspension, statements, complaints ------------
# (the rules: services/gateway/casework.py)


def _reviewer_label(name: str) -> str:
    """A person named by an API client: ``<name> via client:<id>``."""
    return f"{name} via {actors.current().label}"


@bp.post("/traders/<trader_id>/reviews")
@bp.arguments(ReviewSchema())
@bp.response(201, ReviewResultSchema())
@require("ops")
def review_trader(body: dict[str, Any], trader_id: str) -> Any:
    """A reviewer's decision (``approve`` | ``reject`` | ``request_information``) on the
    trader's current verification: a new ``manual`` verification settling the automated one,
    ``verdict.changed``, and for a rejection or a request for information a statement of
    reasons and a correction (Art 30(3)). ``approve`` needs a ``needs_review`` trader (409
    otherwise); approving (b) needs a valid identity document among ``document_ids``."""
    actor = actors.current()
    return _verifier().casework.decide(
        trader_id, actor, reviewer=_reviewer_label(body["reviewer"]),
        decision=body["decision"], items=body["items"], note=body["note"],
        document_ids=body["document_ids"]), 201


@bp.post("/traders/<trader_id>/corrections")
@bp.arguments(CorrectionSchema())
@bp.response(201, TraderStateSchema())
@require("ops")
def request_correction(body: dict[str, Any], trader_id: str) -> Any:
    """Ask the trader to correct its data (Art 30(3)): ``correction_requested`` until
    ``due_at``, a statement of reasons, ``trader.correction_requested``."""
    return _verifier().casework.request_correction(
        trader_id, actors.current(), items=body["items"], reasons=body["reasons"],
        due_at=body.get("due_at")), 201


@bp.post("/traders/<trader_id>/suspension")
@bp.response(200, TraderStateSchema())
@require("onboarding", "ops")
def confirm_suspension(trader_id: str) -> Any:
    """The marketplace confirms it suspended the trader, whose correction time passed:
    ``suspended``, a statement of reasons, ``trader.suspended``."""
    return _verifier().casework.confirm_suspension(trader_id, actors.current())


@bp.post("/traders/<trader_id>/reinstatement")
@bp.response(200, TraderStateSchema())
@require("ops")
def reinstate_trader(trader_id: str) -> Any:
    """Lift a suspension once the trader's current verdict is ``verified``:
    ``reinstated``, ``trader.reinstated``."""
    return _verifier().casework.reinstate(trader_id, actors.current())


@bp.get("/statements/<statement_id>")
@bp.response(200, StatementSchema())
@bp.doc(responses={"200": {"content": {
    "application/json": {"schema": {"$ref": "#/components/schemas/Statement"}},
    "text/html": {"schema": {"type": "string",
                             "description": "The printable page (Accept: text/html)"}}}}})
@require("onboarding", "ops", "batch")
def get_statement(statement_id: str) -> Any:
    """A statement of reasons (DSA Art 17): the facts, the legal ground, the sources consulted
    and when, whether automated, how to complain. ``Accept: text/html``: a printable page."""
    row = _verifier().evidence.statement(statement_id, tenant=g.client.tenant)
    if row is None:
        raise NotFound(f"No statement {statement_id}.")
    statement = _verifier().casework.statement_view(row)
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    if best == "text/html" and request.accept_mimetypes["text/html"] > (
            request.accept_mimetypes["application/json"]):
        return statement_page(statement)
    return statement


def statement_page(statement: dict[str, Any]) -> Response:
    """The printable HTML page of a statement (no script), with the dashboard's headers."""
    from services.gateway.dashboard import SECURITY_HEADERS
    from services.gateway.i18n import translate

    html = render_template("ops/statement.html", s=statement,
                           t=lambda text, **kw: translate(statement["locale"], text, **kw))
    response = Response(html, 200, mimetype="text/html")
    response.headers.update(SECURITY_HEADERS)
    return response


@bp.post("/traders/<trader_id>/complaints")
@bp.arguments(ComplaintSchema())
@bp.response(201, ComplaintOutSchema())
@require("onboarding", "ops")
def file_complaint(body: dict[str, Any], trader_id: str) -> Any:
    """The trader's complaint against a decision (Art 20, 30(4)), named by its statement:
    ``complaint.received``; staff decide it."""
    return _verifier().casework.complain(
        trader_id, actors.current(), statement_id=body["statement_id"], text=body["text"],
        locale=body.get("locale")), 201


@bp.post("/complaints/<complaint_id>/decision")
@bp.arguments(ComplaintDecisionSchema())
@bp.response(200, ComplaintOutSchema())
@require("ops")
def decide_complaint(body: dict[str, Any], complaint_id: str) -> Any:
    """Decide a complaint (``upheld`` | ``rejected``, a note), by a person other than the one
    who took the contested decision (403 otherwise): ``complaint.decided``."""
    return _verifier().casework.decide_complaint(
        complaint_id, actors.current(), decided_by=_reviewer_label(body["decided_by"]),
        outcome=body["outcome"], note=body["note"])
