"""The result types of the VAT service and its marshmallow schemas describe the same fields."""

from __future__ import annotations

from typing import get_args

import marshmallow as ma

from services.vat.results import (
    ErrorInfo,
    Status,
    TraderBody,
    VatCheckBody,
    VatCheckResult,
)
from services.vat.schemas import (
    ErrorInfoSchema,
    TraderSchema,
    VatCheckRequestSchema,
    VatCheckResultSchema,
)


def test_the_result_type_has_the_schemas_fields() -> None:
    assert VatCheckResult.__required_keys__ == set(VatCheckResultSchema().fields)
    assert VatCheckResult.__optional_keys__ == frozenset()
    assert ErrorInfo.__required_keys__ == set(ErrorInfoSchema().fields)


def test_the_statuses_are_the_schemas() -> None:
    status = VatCheckResultSchema().fields["status"]
    assert set(get_args(Status)) == set(status.validate.choices)


def test_the_request_body_type_has_the_schemas_fields() -> None:
    schema = VatCheckRequestSchema()
    assert VatCheckBody.__required_keys__ | VatCheckBody.__optional_keys__ == set(schema.fields)
    # what the schema always loads (required, or with a default) is required in the type
    always = {n for n, f in schema.fields.items()
              if f.required or f.load_default is not ma.missing}
    assert VatCheckBody.__required_keys__ == always
    assert TraderBody.__optional_keys__ == set(TraderSchema().fields)
