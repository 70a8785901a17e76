"""HTTP routes of the payment service: ``POST /v1/payment/check``."""

from __future__ import annotations

from flask import current_app

from services.payment.checks import CheckRequest, PaymentChecker
from services.payment.results import PaymentCheckBody, PaymentCheckResult
from services.payment.schemas import PaymentCheckRequestSchema, PaymentCheckResultSchema
from shared.openapi import Blueprint

bp = Blueprint(
    "payment", __name__, url_prefix="/v1/payment",
    description="Payment account details (DSA Art. 30(1)(c)): IBAN, BIC, SEPA, payee name",
)

EXTENSION = "trace30.payment"


@bp.post("/check")
@bp.arguments(PaymentCheckRequestSchema)
@bp.response(200, PaymentCheckResultSchema)
def check(body: PaymentCheckBody) -> PaymentCheckResult:
    """Check a trader's payment account details.

    An invalid IBAN or BIC is an answer (``status: invalid`` with ``errors``), not an HTTP
    error. ``unavailable`` only when ``verify_payee`` was asked for and the provider gave no
    answer.
    """
    checker: PaymentChecker = current_app.extensions[EXTENSION]
    return checker.check(
        CheckRequest(
            kind=body["kind"],
            iban=body.get("iban"),
            account_number=body.get("account_number"),
            country_code=body.get("country_code"),
            reference=body.get("reference"),
            provider=body.get("provider"),
            bic=body.get("bic"),
            account_holder=body.get("account_holder"),
            trader_name=body.get("trader_name"),
            verify_payee=body["verify_payee"],
        )
    )
