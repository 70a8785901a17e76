"""The services' answers as whole as the services give them, for tests of the pure verdict
rules that name only the fields they are about.

:func:`vat`, :func:`registry` and :func:`payment` fill in every other field of the service's
answer with a neutral value (nothing found, nothing wrong), as the gateway receives them; the
gateway's own answers (an ``unavailable`` of only ``status`` and ``error``, an
``input_invalid``) are left as they are. :func:`checks` does it for the three.
"""

from __future__ import annotations

from typing import Any

CHECKED_AT = "2026-01-01T00:00:00Z"

VAT = {
    "vat_number": "ESB83891812", "country_code": "ES", "format_valid": True, "reason": None,
    "detail": None, "name": None, "address": None, "trader": None, "match": None,
    "consultation_number": None, "request_date": None, "error": None, "retry_after_s": None,
    "attempts": 1, "cached": False, "stale": False, "sandbox": False, "source": "local",
    "checked_at": CHECKED_AT,
}
REGISTRY = {
    "kind": "cif", "country_code": "ES", "normalised": "B83891812", "format_valid": True,
    "reason": None, "detail": None, "registered_name": None, "legal_form": None,
    "address": None, "registered_address": None, "status_raw": None, "status_detail": None,
    "ceased_on": None, "registered_as": None, "source": None, "name_match": None,
    "error": None, "retry_after_s": None, "attempts": 1, "cached": False, "sandbox": False,
    "checked_at": CHECKED_AT,
}
PAYMENT = {
    "kind": "iban", "iban_masked": "ES****1332", "account_masked": None, "provider": None,
    "country_code": "ES", "checks": [], "bank": {"name": None, "bic": None, "source": None},
    "sepa": {"member": True, "as_of": "2025-01-01", "source": "EPC"},
    "holder_match": {"result": "not_possible", "matched_name": None, "score": None,
                     "detail": "Not compared."},
    "payee": None, "errors": [], "warnings": [], "account_fingerprint": None, "error": None,
    "retry_after_s": None, "sandbox": False, "checked_at": CHECKED_AT,
}


def _whole(defaults: dict[str, Any], answer: dict[str, Any] | None) -> dict[str, Any] | None:
    if answer is None or answer["status"] == "input_invalid" or (
            answer["status"] == "unavailable" and set(answer) <= {"status", "error"}):
        return answer
    return {**defaults, **answer}


def vat(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    return _whole(VAT, answer)


def registry(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    return _whole(REGISTRY, answer)


def payment(answer: dict[str, Any] | None) -> dict[str, Any] | None:
    return _whole(PAYMENT, answer)


def checks(vat_answer: dict[str, Any] | None, registry_answer: dict[str, Any] | None,
           payment_answer: dict[str, Any] | None) -> dict[str, Any]:
    return {"vat": vat(vat_answer), "registry": registry(registry_answer),
            "payment": payment(payment_answer)}
