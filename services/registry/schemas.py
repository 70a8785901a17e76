"""Request and response schemas of the registry service (marshmallow; they also make the
OpenAPI document)."""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from services.registry.kinds import KIND_NAMES
from shared.inputs import Text

STATUSES = ["active", "inactive", "not_found", "invalid", "unverifiable", "unavailable"]


class RegistryCheckRequestSchema(ma.Schema):
    """``POST /v1/registry/check``. Unknown fields are refused; text fields are
    :class:`shared.inputs.Text` (no control characters or lone surrogates, a maximum length)."""

    country_code = Text(
        max_length=2, single_line=True,
        validate=validate.Regexp(r"^[A-Za-z]{2}$", error="Must be two letters (ISO 3166)."),
        metadata={"description": "ISO 3166 alpha-2 (EL and UK accepted); optional for a LEI.",
                  "example": "FR"},
    )
    number = Text(
        required=True, max_length=64, single_line=True, blank=False,
        metadata={"description": "The registration number; spaces and separators tolerated.",
                  "example": "732 829 320"},
    )
    kind = Text(
        max_length=40, single_line=True, validate=validate.OneOf(sorted(KIND_NAMES)),
        metadata={"description": "Kind of number; inferred from the country and the number's "
                  "shape where only one kind fits."},
    )
    register = Text(
        min_length=1, max_length=100,
        metadata={"description": "The register court, for a German Handelsregisternummer "
                  "given without it (e.g. 'Amtsgericht München').", "example": "München"},
    )
    name = Text(
        min_length=1, max_length=300,
        metadata={"description": "The trader's declared legal name, compared with the "
                  "registered one."},
    )
    max_age_s = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "Oldest cached answer accepted, seconds; 0 forces a lookup."},
    )


class LegalFormsSchema(ma.Schema):
    """The legal forms found in the two names (canonical codes of shared/legal_forms.csv)."""

    declared = fields.String(allow_none=True)
    registered = fields.String(allow_none=True)


class NameMatchSchema(ma.Schema):
    """The declared name against the registered one (:mod:`shared.names`)."""

    score = fields.Float(metadata={"description": "0..1"})
    verdict = fields.String(validate=validate.OneOf(["match", "close", "no_match"]))
    declared = fields.String(metadata={"description": "The declared name, normalised"})
    registered = fields.String(metadata={"description": "The registered name, normalised"})
    legal_forms = fields.Nested(LegalFormsSchema)


class SourceSchema(ma.Schema):
    """The register that answered."""

    id = fields.String(metadata={"description": "gleif, fr_recherche, no_brreg, "
                                 "gb_companies_house, dk_cvr, cz_ares or pl_krs"})
    name = fields.String()
    url = fields.String(allow_none=True, metadata={"description": "The record's public page"})


class ErrorInfoSchema(ma.Schema):
    """Why the register gave no answer."""

    code = fields.String(metadata={"description": "UPSTREAM_TIMEOUT, UPSTREAM_THROTTLED, "
                                   "UPSTREAM_SERVER_ERROR, UPSTREAM_UNREACHABLE, UPSTREAM_AUTH, "
                                   "CIRCUIT_OPEN, RATE_LIMITED, ..."})
    retryable = fields.Boolean()
    message = fields.String()


class RegistryCheckResultSchema(ma.Schema):
    """The answer about one registration number."""

    status = fields.String(validate=validate.OneOf(STATUSES))
    country_code = fields.String(allow_none=True)
    kind = fields.String(allow_none=True)
    normalised = fields.String()
    format_valid = fields.Boolean(
        allow_none=True, metadata={"description": "Null when no format is known to check"}
    )
    reason = fields.String(
        allow_none=True, metadata={"description": "For invalid: format, length, checksum or "
                                   "component"}
    )
    detail = fields.String(allow_none=True)
    registered_name = fields.String(allow_none=True)
    legal_form = fields.String(allow_none=True)
    address = fields.String(allow_none=True)
    registered_address = fields.Dict(
        keys=fields.String(), values=fields.String(), allow_none=True,
        metadata={"description": "The address in parts as the register keeps them: street, "
                  "postcode, city, country (each only when given)"})
    status_raw = fields.String(allow_none=True, metadata={"description": "The register's own "
                                                          "status"})
    status_detail = fields.String(allow_none=True)
    ceased_on = fields.String(allow_none=True)
    registered_as = fields.String(
        allow_none=True, metadata={"description": "For a LEI: the national register number"}
    )
    source = fields.Nested(SourceSchema, allow_none=True)
    name_match = fields.Nested(NameMatchSchema, allow_none=True)
    checked_at = fields.String()
    cached = fields.Boolean()
    sandbox = fields.Boolean()
    attempts = fields.Integer()
    error = fields.Nested(ErrorInfoSchema, allow_none=True)
    retry_after_s = fields.Float(allow_none=True)
