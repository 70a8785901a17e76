"""HTTP routes of the VAT service: ``POST /v1/vat/check``."""

from __future__ import annotations

from flask import current_app

from services.vat.checks import CheckRequest, VatChecker
from services.vat.results import VatCheckBody, VatCheckResult
from services.vat.schemas import VatCheckRequestSchema, VatCheckResultSchema
from services.vat.vies import TraderQuery
from shared.openapi import Blueprint

bp = Blueprint("vat", __name__, url_prefix="/v1/vat",
               description="VAT numbers through VIES (SOAP, REST fallback), HMRC, the Swiss UID "
               "register and Brønnøysund")

EXTENSION = "trace30.vat"


@bp.post("/check")
@bp.arguments(VatCheckRequestSchema())  # an instance: webargs reuses it
@bp.response(200, VatCheckResultSchema())
def check(body: VatCheckBody) -> VatCheckResult:
    """Check a VAT number: locally, then against its register (VIES; HMRC for GB, the UID
    register for CH, Brønnøysund for NO; ``unverifiable`` where no online source exists).

    An upstream fault is ``unavailable`` (with ``error`` and ``retry_after_s``), never
    ``invalid``.
    """
    checker: VatChecker = current_app.extensions[EXTENSION]
    trader = body.get("trader")
    return checker.check(
        CheckRequest(
            vat_number=body["vat_number"],
            requester_vat_number=body.get("requester_vat_number"),
            trader=TraderQuery(**trader) if trader else None,
            max_age_s=body.get("max_age_s"),
            allow_stale=body["allow_stale"],
            priority=body["priority"],
        )
    )
