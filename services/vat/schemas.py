"""Request and response schemas of the VAT service (marshmallow; they also make the OpenAPI).

Every text field of a request is a :class:`shared.inputs.Text` (no control characters or lone
surrogates, a maximum length): what is sent goes on to VIES, the cache keys and the logs.
"""

from __future__ import annotations

import marshmallow as ma
from marshmallow import fields, validate

from shared.inputs import Text


class TraderSchema(ma.Schema):
    """Trader details for VIES's approximate check (``checkVatApprox``)."""

    name = Text(max_length=200)
    street = Text(max_length=200)
    postcode = Text(max_length=20, single_line=True)
    city = Text(max_length=100)
    company_type = Text(
        max_length=5, single_line=True,
        validate=validate.Regexp(r"^[A-Z]{2}-[1-9][0-9]?$", error="Must look like 'ES-1'."),
        metadata={"description": "VIES company type code, e.g. ES-1"},
    )


class VatCheckRequestSchema(ma.Schema):
    """``POST /v1/vat/check``."""

    vat_number = Text(
        required=True, max_length=64, single_line=True, blank=False,
        metadata={"description": "With its country prefix (EL for Greece, XI for Northern "
                  "Ireland); spaces, dots and lowercase are tolerated.", "example": "DE136695976"},
    )
    requester_vat_number = Text(
        max_length=64, single_line=True, blank=False,
        metadata={"description": "Who asks; default: the platform's own "
                  "(TRACE30_REQUESTER_VAT_NUMBER). Needed for a consultation number."},
    )
    trader = fields.Nested(TraderSchema)
    max_age_s = fields.Integer(
        validate=validate.Range(min=0),
        metadata={"description": "Oldest cached answer accepted, seconds; 0 forces a fresh check."},
    )
    allow_stale = fields.Boolean(
        load_default=False,
        metadata={"description": "During an outage, accept the last 'valid' answer, marked stale."},
    )
    priority = Text(
        load_default="interactive", max_length=20, single_line=True,
        validate=validate.OneOf(["interactive", "batch"]),
        metadata={"description": "'batch' for background work (re-verification): it waits "
                  "while any interactive check waits for a VIES slot of the member state."},
    )


class ErrorInfoSchema(ma.Schema):
    """Why VIES gave no answer."""

    code = fields.String(metadata={"description": "VIES fault code or one of trace30's own "
                                   "(CIRCUIT_OPEN, CONCURRENCY_LIMIT, UPSTREAM_TIMEOUT, ...)"})
    retryable = fields.Boolean()
    message = fields.String()


class VatCheckResultSchema(ma.Schema):
    """The answer about one VAT number."""

    status = fields.String(validate=validate.OneOf(["valid", "invalid", "unavailable"]))
    vat_number = fields.String(metadata={"description": "Normalised, with its VIES prefix"})
    country_code = fields.String()
    format_valid = fields.Boolean()
    reason = fields.String(
        allow_none=True, metadata={"description": "For invalid: format, checksum or vies"}
    )
    detail = fields.String(allow_none=True)
    name = fields.String(allow_none=True, metadata={"description": "Null where VIES hides it"})
    address = fields.String(allow_none=True)
    trader = fields.Dict(allow_none=True, metadata={"description": "Trader fields VIES returned"})
    match = fields.Dict(
        keys=fields.String(),
        values=fields.String(),
        allow_none=True,
        metadata={"description": "Per trader field: valid, invalid or not_processed"},
    )
    consultation_number = fields.String(
        allow_none=True, metadata={"description": "VIES requestIdentifier: proof of the check"}
    )
    request_date = fields.String(allow_none=True)
    checked_at = fields.String()
    source = fields.String(metadata={"description": "vies, or local for a format failure"})
    sandbox = fields.Boolean(
        metadata={"description": "True when the answer came from the simulator"})
    cached = fields.Boolean()
    stale = fields.Boolean()
    attempts = fields.Integer()
    error = fields.Nested(ErrorInfoSchema, allow_none=True)
    retry_after_s = fields.Float(allow_none=True)
