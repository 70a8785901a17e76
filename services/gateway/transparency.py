"""``GET /v1/reports/traceability`` (scope ``ops``): the transparency figures of the client's
tenant from the evidence log (:mod:`services.gateway.reports`), as JSON or CSV."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
from flask import Response, current_app, g, request
from marshmallow import fields, validate

from services.gateway import api
from services.gateway.access import require
from services.gateway.reports import FORMATS, PERIODS, ReportError, traceability
from shared.errors import BadRequest
from shared.openapi import Blueprint

bp = Blueprint("reports", __name__, url_prefix="/v1/reports",
               description="Transparency figures from the evidence log")


class ReportQuerySchema(ma.Schema):
    """The range (whole UTC days, both included), the period of a row and the format."""

    start = fields.Date(required=True, data_key="from", metadata={"example": "2025-01-01"})
    end = fields.Date(required=True, data_key="to", metadata={"example": "2025-03-31"})
    period = fields.String(load_default="month", validate=validate.OneOf(PERIODS))
    format = fields.String(validate=validate.OneOf(FORMATS), metadata={
        "description": "json (default) or csv; Accept: text/csv asks for csv too"})


class ReportFiguresSchema(ma.Schema):
    """The figures of a row, or of the whole range (``totals``)."""

    traders_submitted = fields.Integer()
    verified = fields.Integer()
    sent_to_review = fields.Integer()
    rejected = fields.Integer()
    reviewer_approved = fields.Integer()
    reviewer_rejected = fields.Integer()
    reviewer_requested_information = fields.Integer()
    corrections_requested = fields.Integer()
    suspended = fields.Integer()
    reinstated = fields.Integer()
    complaints_received = fields.Integer()
    complaints_decided = fields.Integer()
    complaints_upheld = fields.Integer()
    complaints_rejected = fields.Integer()
    median_decision_s = fields.Float(allow_none=True)
    reasons = fields.Dict(keys=fields.String(), values=fields.Integer())
    items = fields.Dict(keys=fields.String(), values=fields.Integer())


class ReportRowSchema(ReportFiguresSchema):
    """One period and country."""

    period = fields.String()
    country = fields.String()


class TraceabilityReportSchema(ma.Schema):
    tenant = fields.String()
    from_ = fields.String(data_key="from")
    to = fields.String()
    period = fields.String()
    closed = fields.Boolean(metadata={"description": "The range ended before today (UTC): "
                                      "its figures no longer change"})
    rows = fields.List(fields.Nested(ReportRowSchema))
    totals = fields.Nested(ReportFiguresSchema)


@bp.get("/traceability")
@bp.arguments(ReportQuerySchema(), location="query")
@bp.response(200, TraceabilityReportSchema(), content_type="application/json",
             description="The report; with format=csv, text/csv: period,country,figure,value")
@bp.doc(responses={"200": {
    "description": "The report: JSON, or with format=csv (or Accept: text/csv) CSV",
    "content": {
    "application/json": {"schema": TraceabilityReportSchema},
    "text/csv": {"schema": {"type": "string",
                            "description": "period,country,figure,value; a line a figure"}}}}})
@require("ops")
def traceability_report(query: dict[str, Any]) -> Any:
    """Per period and country: traders submitted, verified, sent to review, rejected,
    corrections requested, suspended, reinstated, complaints received and decided, the median
    time from submission to decision, by reason code and Art 30(1) item."""
    evidence = current_app.extensions[api.EXTENSION].evidence
    try:
        report = traceability(evidence.engine, tenant=g.client.tenant, start=query["start"],
                              end=query["end"], period=query["period"],
                              today=datetime.now(UTC).date())
    except ReportError as e:
        raise BadRequest(str(e), errors={e.field: [str(e)]}) from e
    fmt = query.get("format") or (
        "csv" if request.accept_mimetypes.best_match(["application/json", "text/csv"])
        == "text/csv" else "json")
    if fmt == "csv":
        name = f"traceability-{report.start}-{report.end}-{report.period}.csv"
        return Response(report.as_csv(), 200, mimetype="text/csv",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})
    return current_app.json.response(report.as_json())
