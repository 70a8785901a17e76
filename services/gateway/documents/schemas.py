"""The document routes' schemas: the upload form and the document as the API shows it."""

from __future__ import annotations

from datetime import date
from typing import Any

import marshmallow as ma
import pycountry
from flask_smorest.fields import Upload as UploadField
from marshmallow import fields, validate

from services.gateway.evidence.schema import DOCUMENT_KINDS
from services.gateway.schemas import DATE_FLOOR
from shared.inputs import Text

#: The latest expiry date accepted: no identity document is valid for more than a few decades.
EXPIRY_CEILING = date(2100, 12, 31)


def _country(value: str) -> None:
    if pycountry.countries.get(alpha_2=value) is None:
        raise ma.ValidationError("Must be an ISO 3166 alpha-2 country code, e.g. DE.")


class UploadFormSchema(ma.Schema):
    """The upload's form fields (multipart/form-data, beside the ``file``)."""

    class Meta:
        unknown = ma.EXCLUDE

    kind = fields.String(required=True, validate=validate.OneOf(DOCUMENT_KINDS),
                         metadata={"description": "What the document is"})
    issuing_country = Text(max_length=2, single_line=True, validate=_country,
                           metadata={"description": "ISO 3166 alpha-2 code of the issuer"})
    expires_on = fields.Date(metadata={"description": "Expiry date (YYYY-MM-DD), if any"})
    name_shown = Text(max_length=200, single_line=True, blank=False,
                      metadata={"description": "The name the document shows (compared with "
                                "the trader's declared name)"})

    @ma.validates("expires_on")
    def _sensible(self, value: date, **_: Any) -> None:
        if value < DATE_FLOOR.date():
            raise ma.ValidationError(f"Must not be before {DATE_FLOOR:%Y-%m-%d}.")
        if value > EXPIRY_CEILING:
            raise ma.ValidationError(f"Must not be after {EXPIRY_CEILING.isoformat()}.")

    @ma.pre_load
    def _upper_country(self, data: Any, **_: Any) -> Any:
        if hasattr(data, "to_dict"):  # a MultiDict: its first values
            data = data.to_dict()
        country = data.get("issuing_country") if isinstance(data, dict) else None
        if isinstance(country, str):
            data = {**data, "issuing_country": country.strip().upper()}
        return data


class UploadFileSchema(ma.Schema):
    """The upload's file part."""

    class Meta:
        unknown = ma.EXCLUDE

    file = UploadField(required=True, metadata={
        "description": "The document: a PDF, JPEG or PNG file (its content decides)"})


class DocumentSchema(ma.Schema):
    """A supporting document's metadata (the file is at ``/v1/documents/{id}/content``)."""

    id = fields.String()
    trader_id = fields.String()
    kind = fields.String(validate=validate.OneOf(DOCUMENT_KINDS))
    issuing_country = fields.String(allow_none=True)
    expires_on = fields.Date(allow_none=True)
    name_shown = fields.String(allow_none=True)
    content_type = fields.String()
    size_bytes = fields.Integer()
    sha256 = fields.String(metadata={"description": "SHA-256 of the plain file, hex"})
    storage = fields.String()
    name_check = fields.Dict(allow_none=True, metadata={
        "description": "match (true, false, or null when not checked), score, verdict"})
    reasons = fields.List(fields.Dict(), metadata={
        "description": "Reasons the upload raised (DOCUMENT_NAME_MISMATCH)"})
    uploaded_at = fields.DateTime()
    uploaded_by = fields.String(metadata={"description": "staff:<username> or client:<id>"})
    content_url = fields.String()


class DocumentListSchema(ma.Schema):
    """A trader's documents, newest first."""

    trader_id = fields.String()
    documents = fields.List(fields.Nested(DocumentSchema))
