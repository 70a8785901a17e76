"""Request and response schemas of the gateway (marshmallow; they also make the OpenAPI).

A submission may leave out what the trader has not given yet: the verdict then says what is
missing (``rejected`` with ``MISSING_*`` reasons). What is given must be well-formed, or the
request is a 400 naming every field at fault.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
import phonenumbers
from marshmallow import ValidationError, fields, validate, validates, validates_schema

_COUNTRY = validate.Regexp(r"^[A-Z]{2}$", error="Must be an ISO 3166 alpha-2 code, e.g. DE.")

ID_TYPES = ["passport", "national_id", "residence_permit", "driving_licence", "eid", "other"]


class AddressSchema(ma.Schema):
    """The trader's address."""

    street = fields.String(validate=validate.Length(max=200))
    postcode = fields.String(validate=validate.Length(max=20))
    city = fields.String(validate=validate.Length(max=100))
    country_code = fields.String(validate=_COUNTRY)


class IdentificationSchema(ma.Schema):
    """The identification document or eID: its presence is recorded, documents are not read."""

    type = fields.String(required=True, validate=validate.OneOf(ID_TYPES))
    reference = fields.String(validate=validate.Length(max=100))


class PaymentSchema(ma.Schema):
    """The trader's payment account."""

    iban = fields.String(required=True, validate=validate.Length(min=1, max=64))
    bic = fields.String(validate=validate.Length(max=20))
    account_holder = fields.String(validate=validate.Length(max=200))


class RegistrationSchema(ma.Schema):
    """The trade register and registration number, or ``not_registered: true`` for a sole
    trader with no register entry (30(1)(d) is then ``not_applicable``, on record)."""

    country_code = fields.String(validate=_COUNTRY)
    number = fields.String(validate=validate.Length(min=1, max=64))
    kind = fields.String(validate=validate.Length(max=40))
    register = fields.String(validate=validate.Length(max=100))
    not_registered = fields.Boolean(metadata={"description": "True: the trader is in no trade "
                                              "register (a sole trader); then no number"})

    @validates_schema
    def _number_or_not_registered(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("not_registered") is True and data.get("number"):
            raise ValidationError("Must not be true when a number is given.", "not_registered")
        if data.get("not_registered") is not True and "number" not in data:
            raise ValidationError("Missing: give the number, or not_registered: true for a "
                                  "trader in no register.", "number")


class SelfCertificationSchema(ma.Schema):
    """The trader's certification that it offers only products complying with EU law."""

    accepted = fields.Boolean(required=True)
    accepted_at = fields.AwareDateTime()


class SubmissionSchema(ma.Schema):
    """``POST /v1/verifications``: what a trader declared at signup."""

    trader_id = fields.String(required=True, validate=validate.Length(min=1, max=100),
                              metadata={"description": "The marketplace's own id of the trader"})
    name = fields.String(validate=validate.Length(max=200))
    address = fields.Nested(AddressSchema)
    email = fields.Email(validate=validate.Length(max=254))
    phone = fields.String(validate=validate.Length(max=40),
                          metadata={"description": "International format, or national with "
                                    "address.country_code"})
    identification = fields.Nested(IdentificationSchema)
    payment = fields.Nested(PaymentSchema)
    registration = fields.Nested(RegistrationSchema)
    vat_number = fields.String(validate=validate.Length(max=64))
    self_certification = fields.Nested(SelfCertificationSchema)

    @validates_schema
    def _phone(self, data: dict[str, Any], **_: Any) -> None:
        phone = data.get("phone")
        if not phone:
            return
        region = (data.get("address") or {}).get("country_code")
        try:
            number = phonenumbers.parse(phone, region)
        except phonenumbers.NumberParseException as e:
            raise ValidationError("Not a telephone number.", "phone") from e
        if not phonenumbers.is_possible_number(number):
            raise ValidationError("Not a possible telephone number.", "phone")


class ReasonSchema(ma.Schema):
    """Why the verdict is what it is; ``code`` is from the stable list in the OpenAPI."""

    code = fields.String()
    item = fields.String(metadata={"description": "The Art 30(1) point, e.g. 30(1)(c)"})
    severity = fields.String(validate=validate.OneOf(["error", "pending", "warning", "info"]))
    message = fields.String()
    detail = fields.String()


class VerificationSchema(ma.Schema):
    """A verification and its traceability verdict."""

    id = fields.String()
    trader_id = fields.String()
    state = fields.String(validate=validate.OneOf(["running", "settled"]))
    verdict = fields.String(allow_none=True, validate=validate.OneOf(
        ["verified", "needs_review", "rejected", "pending"]))
    items = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    reasons = fields.List(fields.Nested(ReasonSchema), allow_none=True)
    checks = fields.Dict(allow_none=True)
    name_consistency = fields.Dict(allow_none=True)
    evidence = fields.Dict(allow_none=True)
    checked_at = fields.String(allow_none=True)
    expires_at = fields.String(allow_none=True)
    created_at = fields.String(allow_none=True)
    fingerprint = fields.String()
    cached = fields.Boolean()
    attempts = fields.Integer()


class HistorySchema(ma.Schema):
    """A trader's verifications, newest first."""

    trader_id = fields.String()
    verifications = fields.List(fields.Nested(VerificationSchema))


class HistoryQuerySchema(ma.Schema):
    """Paging of the history."""

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=500))


#: How far ahead of the server's clock an ``ended_at`` may be (the client's clock may run ahead).
END_CLOCK_SKEW = timedelta(minutes=1)


class EndRelationshipSchema(ma.Schema):
    """``POST /v1/traders/{id}/end``: when the relationship with the trader ended."""

    ended_at = fields.AwareDateTime(metadata={"description": "When it ended (default: now); "
                                              "not in the future"})

    @validates("ended_at")
    def _not_in_future(self, value: datetime, **_: Any) -> None:
        if value > datetime.now(UTC) + END_CLOCK_SKEW:
            raise ValidationError("Must not be in the future (by more than a minute).")


class RelationshipEndSchema(ma.Schema):
    """The end of a trader relationship as recorded, and when the purge may delete the trader."""

    trader_id = fields.String()
    ended_at = fields.AwareDateTime()
    purge_after = fields.AwareDateTime(metadata={
        "description": "00:00 UTC of the day TRACE30_RETENTION_MONTHS calendar months after "
                       "ended_at (a day the month lacks: its last day): from then on "
                       "`trace30 purge` deletes everything about the trader (DSA Art 30(5))"})
