"""The gateway's typed views of the services' answers name only fields the services answer,
and the tests' whole answers (tests/gateway/service_answers.py) are the services' shapes."""

from __future__ import annotations

from typing import get_args

import pytest

from services.gateway import answers
from services.payment.schemas import (
    CheckSchema,
    HolderMatchSchema,
    PayeeSchema,
    PaymentCheckResultSchema,
)
from services.registry.schemas import RegistryCheckResultSchema, SourceSchema
from services.vat.schemas import ErrorInfoSchema, VatCheckResultSchema
from shared.openapi import ProblemSchema
from tests.gateway import service_answers

VIEWS = [
    (answers.VatResult, VatCheckResultSchema),
    (answers.RegistryResult, RegistryCheckResultSchema),
    (answers.RegisterSource, SourceSchema),
    (answers.PaymentResult, PaymentCheckResultSchema),
    (answers.PaymentCheck, CheckSchema),
    (answers.NameComparison, HolderMatchSchema),
    (answers.NameComparison, PayeeSchema),
    (answers.ErrorInfo, ErrorInfoSchema),
]


@pytest.mark.parametrize(("view", "schema"), VIEWS,
                         ids=[f"{v.__name__}-{s.__name__}" for v, s in VIEWS])
def test_every_field_the_gateway_reads_is_in_the_services_answer(view, schema) -> None:
    assert view.__optional_keys__ == frozenset()
    assert view.__required_keys__ <= set(schema().fields)


@pytest.mark.parametrize(("view", "schema"), [
    (answers.VatResult, VatCheckResultSchema),
    (answers.RegistryResult, RegistryCheckResultSchema),
    (answers.PaymentResult, PaymentCheckResultSchema),
])
def test_the_statuses_are_the_services(view, schema) -> None:
    status = get_args(view.__annotations__["status"])
    assert set(status) == set(schema().fields["status"].validate.choices)


def test_every_result_has_checked_at_and_the_gateways_answers_do_not() -> None:
    """``"checked_at" in answer`` tells a service's result from the gateway's own answers."""
    for view in (answers.VatResult, answers.RegistryResult, answers.PaymentResult):
        assert "checked_at" in view.__required_keys__
    for own in (answers.Unavailable, answers.InputInvalid):
        assert "checked_at" not in own.__required_keys__
    # the InputInvalid the gateway makes of a service's 400 reads the problem document
    assert {"errors", "detail"} <= set(ProblemSchema().fields)


@pytest.mark.parametrize(("defaults", "schema"), [
    (service_answers.VAT, VatCheckResultSchema),
    (service_answers.REGISTRY, RegistryCheckResultSchema),
    (service_answers.PAYMENT, PaymentCheckResultSchema),
])
def test_the_tests_whole_answers_are_the_services_shape(defaults, schema) -> None:
    assert set(defaults) | {"status"} == set(schema().fields)
    status = schema().fields["status"].validate.choices[0]
    assert schema().validate({"status": status, **defaults}) == {}
