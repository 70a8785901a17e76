"""The result types of the registry service and its marshmallow schemas describe the same
fields."""

from __future__ import annotations

from typing import get_args

from services.registry.results import (
    ErrorInfo,
    LegalForms,
    NameMatch,
    RegistryCheckBody,
    RegistryCheckResult,
    Source,
    Status,
)
from services.registry.schemas import (
    STATUSES,
    ErrorInfoSchema,
    LegalFormsSchema,
    NameMatchSchema,
    RegistryCheckRequestSchema,
    RegistryCheckResultSchema,
    SourceSchema,
)


def test_the_result_types_have_the_schemas_fields() -> None:
    for typed, schema in [(RegistryCheckResult, RegistryCheckResultSchema),
                          (ErrorInfo, ErrorInfoSchema), (Source, SourceSchema),
                          (NameMatch, NameMatchSchema), (LegalForms, LegalFormsSchema)]:
        assert typed.__required_keys__ == set(schema().fields), typed.__name__
        assert typed.__optional_keys__ == frozenset(), typed.__name__


def test_the_statuses_are_the_schemas() -> None:
    assert list(get_args(Status)) == STATUSES


def test_the_request_body_type_has_the_schemas_fields() -> None:
    schema = RegistryCheckRequestSchema()
    assert RegistryCheckBody.__required_keys__ == {n for n, f in schema.fields.items()
                                                  if f.required}
    assert RegistryCheckBody.__optional_keys__ == {n for n, f in schema.fields.items()
                                                  if not f.required}
