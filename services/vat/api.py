"""HTTP routes of the VAT service: ``POST /v1/vat/check``."""

from __future__ import annotations

import json

from flask import Response, current_app

from services.vat.checks import CheckRequest, VatChecker
from services.vat.results import VatCheckBody, VatCheckResult
from services.vat.schemas import VatCheckRequestSchema, VatCheckResultSchema
from services.vat.vies import TraderQuery
from shared.openapi import Blueprint

bp = Blueprint("vat", __name__, url_prefix="/v1/vat",
               description="VAT numbers through VIES (SOAP, REST fallback), HMRC, the Swiss UID "
               "register and Brønnøysund")

EXTENSION = "trace30.vat"

#: The answer's schema: every answer is dumped through it, so only its fields ever leave.
RESULT_SCHEMA = VatCheckResultSchema()


@bp.post("/check")
@bp.arguments(VatCheckRequestSchema())  # an instance: webargs reuses it
@bp.response(200, RESULT_SCHEMA)
def check(body: VatCheckBody) -> Response:
    """Check a VAT number: locally, then against its register (VIES; HMRC for GB, the UID
    register for CH, Brønnøysund for NO; ``unverifiable`` where no online source exists).

    An upstream fault is ``unavailable`` (with ``error`` and ``retry_after_s``), never
    ``invalid``.
    """
    checker: VatChecker = current_app.extensions[EXTENSION]
    trader = body.get("trader")
    result: VatCheckResult = checker.check(
        CheckRequest(
            vat_number=body["vat_number"],
            requester_vat_number=body.get("requester_vat_number"),
            trader=TraderQuery(**trader) if trader else None,
            max_age_s=body.get("max_age_s"),
            allow_stale=body["allow_stale"],
            priority=body["priority"],
        )
    )
    # Dumped through the schema, then encoded once, in the schema's order: flask-smorest's
    # own path (dump, then jsonify sorting the keys) costs the cached check more.
    return Response(json.dumps(RESULT_SCHEMA.dump(result)), mimetype="application/json")
