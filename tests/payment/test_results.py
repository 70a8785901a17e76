"""The result types of the payment service and its marshmallow schemas describe the same
fields."""

from __future__ import annotations

from typing import get_args

from services.payment.results import (
    Bank,
    CheckInfo,
    ErrorInfo,
    HolderMatch,
    NameResult,
    Payee,
    PaymentCheckBody,
    PaymentCheckResult,
    Sepa,
    Status,
)
from services.payment.schemas import (
    BankSchema,
    CheckSchema,
    ErrorInfoSchema,
    HolderMatchSchema,
    PayeeSchema,
    PaymentCheckRequestSchema,
    PaymentCheckResultSchema,
    SepaSchema,
)


def test_the_result_types_have_the_schemas_fields() -> None:
    for typed, schema in [(PaymentCheckResult, PaymentCheckResultSchema),
                          (CheckInfo, CheckSchema), (Bank, BankSchema), (Sepa, SepaSchema),
                          (HolderMatch, HolderMatchSchema), (Payee, PayeeSchema),
                          (ErrorInfo, ErrorInfoSchema)]:
        assert typed.__required_keys__ == set(schema().fields), typed.__name__
        assert typed.__optional_keys__ == frozenset(), typed.__name__


def test_the_literals_are_the_schemas_choices() -> None:
    result_fields = PaymentCheckResultSchema().fields
    assert set(get_args(Status)) == set(result_fields["status"].validate.choices)
    for schema in (HolderMatchSchema, PayeeSchema):
        assert set(get_args(NameResult)) == set(schema().fields["result"].validate.choices)


def test_the_request_body_type_has_the_schemas_fields() -> None:
    schema = PaymentCheckRequestSchema()
    assert PaymentCheckBody.__required_keys__ | PaymentCheckBody.__optional_keys__ == set(
        schema.fields)
    # kind and verify_payee have a default: always there once loaded
    assert PaymentCheckBody.__required_keys__ == {"kind", "verify_payee"}
    assert schema.load({"iban": "DE89370400440532013000"}).keys() >= {"kind", "verify_payee"}
