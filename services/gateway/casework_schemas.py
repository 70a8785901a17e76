"""Request and response schemas of the casework routes (review decisions, corrections,
suspension, statements, complaints); the rules are in :mod:`services.gateway.casework`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate, validates

from services.gateway.evidence.schema import REVIEW_DECISIONS
from services.gateway.reasons import ITEMS
from services.gateway.schemas import check_date
from shared.inputs import Text

_ITEMS = fields.List(Text(max_length=1, single_line=True, validate=validate.OneOf(list(ITEMS))),
                     required=True, validate=validate.Length(min=1, max=len(ITEMS)),
                     metadata={"description": "Points of Art 30(1): a..e"})
NOTE_MAX = 5000


class ReviewSchema(ma.Schema):
    """``POST /v1/traders/{id}/reviews``: a reviewer's decision."""

    decision = Text(required=True, max_length=32, single_line=True,
                    validate=validate.OneOf(REVIEW_DECISIONS))
    items = _ITEMS
    note = Text(required=True, max_length=NOTE_MAX, blank=False)
    reviewer = Text(required=True, max_length=100, single_line=True, blank=False,
                    metadata={"description": "The person who decided (recorded as "
                              "'<reviewer> via client:<id>')"})
    document_ids = fields.List(Text(max_length=32, single_line=True, blank=False),
                               load_default=list, validate=validate.Length(max=20))


class CorrectionSchema(ma.Schema):
    """``POST /v1/traders/{id}/corrections``: staff ask the trader to correct its data."""

    items = _ITEMS
    reasons = Text(required=True, max_length=NOTE_MAX, blank=False,
                   metadata={"description": "What to correct, written for the trader"})
    due_at = fields.AwareDateTime(metadata={"description": "Default: now + "
                                            "TRACE30_GATEWAY_CORRECTION_DAYS"})

    @validates("due_at")
    def _future(self, value: datetime, **_: Any) -> None:
        check_date(value)
        if value <= datetime.now(UTC):
            raise ma.ValidationError("Must be in the future.")


class ComplaintSchema(ma.Schema):
    """``POST /v1/traders/{id}/complaints``: the trader contests a decision."""

    statement_id = Text(required=True, max_length=32, single_line=True, blank=False)
    text = Text(required=True, max_length=NOTE_MAX, blank=False)
    locale = Text(max_length=35, single_line=True)


class ComplaintDecisionSchema(ma.Schema):
    """``POST /v1/complaints/{id}/decision``."""

    outcome = Text(required=True, max_length=16, single_line=True,
                   validate=validate.OneOf(["upheld", "rejected"]))
    note = Text(required=True, max_length=NOTE_MAX, blank=False)
    decided_by = Text(required=True, max_length=100, single_line=True, blank=False)


class TraderStateSchema(ma.Schema):
    """A trader's Art 30(3) state."""

    trader_id = fields.String()
    state = fields.String(validate=validate.OneOf(["active", "correction_requested",
                                                   "suspended", "reinstated"]))
    state_changed_at = fields.String(allow_none=True)
    correction = fields.Dict(allow_none=True)
    suspended_at = fields.String(allow_none=True)
    reinstated_at = fields.String(allow_none=True)
    approval_review_id = fields.String(allow_none=True)
    statement = fields.Dict(allow_none=True)


class ReviewResultSchema(ma.Schema):
    """A decision as recorded: the review, the manual verification, the trader's state."""

    review = fields.Dict()
    verification = fields.Dict()
    trader = fields.Dict(allow_none=True)


class StatementSchema(ma.Schema):
    """A statement of reasons (DSA Art 17)."""

    class Meta:
        unknown = ma.INCLUDE

    id = fields.String()
    kind = fields.String()
    trader_id = fields.String()
    verification_id = fields.String(allow_none=True)
    review_id = fields.String(allow_none=True)
    automated = fields.Boolean()
    decided_by = fields.String(allow_none=True)
    locale = fields.String()
    created_at = fields.String()
    url = fields.String()
    title = fields.String()
    decision = fields.String()
    facts = fields.List(fields.Dict())
    legal_ground = fields.Dict()
    sources = fields.List(fields.Dict())
    automated_means = fields.String()
    redress = fields.Dict()


class ComplaintOutSchema(ma.Schema):
    """A complaint and its outcome."""

    id = fields.String()
    trader_id = fields.String()
    statement_id = fields.String()
    contested_by = fields.String(allow_none=True)
    text = fields.String()
    locale = fields.String()
    received_at = fields.String()
    status = fields.String()
    decided_at = fields.String(allow_none=True)
    decided_by = fields.String(allow_none=True)
    decision_note = fields.String(allow_none=True)
    effect = fields.String(allow_none=True)
