"""Request and response schemas of the gateway (marshmallow; they also make the OpenAPI).

A submission may leave out what the trader has not given yet: the verdict then says what is
missing (``rejected`` with ``MISSING_*`` reasons). What is given must be well-formed, or the
request is a 400 naming every field at fault. Every text field is a :class:`shared.inputs.Text`:
no control characters or lone surrogates, a maximum length, and ids that are not blank.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import marshmallow as ma
import phonenumbers
from marshmallow import ValidationError, fields, validate, validates, validates_schema

from services.gateway.reasons import Verdict
from shared.inputs import Email, Text

_COUNTRY = validate.Regexp(r"^[A-Z]{2}$", error="Must be an ISO 3166 alpha-2 code, e.g. DE.")

#: The earliest date trace30 accepts from a client (an end of relationship, a self-certification):
#: 2000-01-01. Nothing trace30 records can be older (Art 30 came with the DSA in 2022), yet a
#: floor well before that never refuses a true date a marketplace imports, while it refuses the
#: typos and placeholders that matter (year 1, 0202, 1900-01-01): an ended_at among them makes
#: the trader purgeable at once. It also keeps every accepted date convertible to UTC.
DATE_FLOOR = datetime(2000, 1, 1, tzinfo=UTC)


def check_date(value: datetime) -> None:
    """Refuse a date before :data:`DATE_FLOOR`, or one that UTC cannot represent.

    >>> check_date(datetime.fromisoformat("0001-01-01T00:00:00+14:00"))
    Traceback (most recent call last):
    ...
    marshmallow.exceptions.ValidationError: Must not be before 2000-01-01.
    >>> check_date(datetime.fromisoformat("9999-12-31T23:59:59-14:00"))
    Traceback (most recent call last):
    ...
    marshmallow.exceptions.ValidationError: Must be a date that UTC can represent.
    """
    too_early = ValidationError(f"Must not be before {DATE_FLOOR:%Y-%m-%d}.")
    if value.year < DATE_FLOOR.year:  # also year 1 east of UTC, which UTC cannot represent
        raise too_early
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValidationError("Must be a date that UTC can represent.") from None
    if utc < DATE_FLOOR:
        raise too_early


ID_TYPES = ["passport", "national_id", "residence_permit", "driving_licence", "eid", "other"]


class AddressSchema(ma.Schema):
    """The trader's address."""

    street = Text(max_length=200)
    postcode = Text(max_length=20, single_line=True)
    city = Text(max_length=100)
    country_code = Text(max_length=2, single_line=True, validate=_COUNTRY)


class IdentificationSchema(ma.Schema):
    """The identification document or eID: its presence is recorded, documents are not read."""

    type = Text(required=True, max_length=40, single_line=True, validate=validate.OneOf(ID_TYPES))
    reference = Text(max_length=100, single_line=True)


#: The fields of each kind of payment account (``account_holder`` goes with every kind).
PAYMENT_KIND_FIELDS = {"iban": ("iban", "bic"),
                       "account": ("account_number", "bic", "country_code"),
                       "other": ("reference", "provider")}
_PAYMENT_REQUIRED = {"iban": ("iban",), "account": ("account_number", "bic", "country_code"),
                     "other": ("reference",)}


class PaymentSchema(ma.Schema):
    """The trader's payment account: an IBAN (``kind`` ``iban``, the default), an account
    number with the bank's BIC and the account's country where there is no IBAN (``account``),
    or a wallet or payment-processor reference (``other``). The last two leave 30(1)(c)
    unverified (``PAYMENT_ACCOUNT_NOT_IBAN``): a person looks at them."""

    kind = Text(max_length=10, single_line=True,
                validate=validate.OneOf(list(PAYMENT_KIND_FIELDS)),
                metadata={"description": "iban (default), account or other"})
    # not single_line: the payment service cleans up white space of any kind (a pasted IBAN)
    iban = Text(max_length=64, blank=False,
                metadata={"description": "kind iban (required)"})
    bic = Text(max_length=20, single_line=True,
               metadata={"description": "kind iban, or kind account (required)"})
    account_number = Text(max_length=64, blank=False,
                          metadata={"description": "kind account (required): the account "
                                    "number where the account has no IBAN"})
    country_code = Text(max_length=2, single_line=True, validate=_COUNTRY,
                        metadata={"description": "kind account (required): the account's "
                                  "country"})
    reference = Text(max_length=200, single_line=True, blank=False,
                     metadata={"description": "kind other (required): the wallet or "
                               "payment-processor account reference"})
    provider = Text(max_length=100, single_line=True,
                    metadata={"description": "kind other: the processor's name"})
    account_holder = Text(max_length=200)

    @validates_schema
    def _fields_of_kind(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("kind") or "iban"
        errors: dict[str, list[str]] = {}
        for name in _PAYMENT_REQUIRED[kind]:
            if name not in data:
                errors[name] = [f"Missing data for required field (kind {kind})."]
        for names in PAYMENT_KIND_FIELDS.values():
            for name in names:
                if name in data and name not in PAYMENT_KIND_FIELDS[kind]:
                    errors[name] = [f"Not used with kind {kind}."]
        if errors:
            raise ValidationError(errors)


class RegistrationSchema(ma.Schema):
    """The trade register and registration number, or ``not_registered: true`` for a sole
    trader with no register entry (30(1)(d) is then ``not_applicable``, on record)."""

    country_code = Text(max_length=2, single_line=True, validate=_COUNTRY)
    number = Text(max_length=64, single_line=True, blank=False)
    kind = Text(max_length=40, single_line=True)
    register = Text(max_length=100)
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
    accepted_at = fields.AwareDateTime(metadata={
        "description": "When the trader accepted it. Left out, the gateway records the time it "
                       "received the submission (with accepted_at_source: gateway)."})
    text_version = Text(max_length=64, single_line=True, blank=False, metadata={
        "description": "The version of the certification text the trader accepted, as the "
                       "marketplace names it", "example": "2024-02"})

    @validates("accepted_at")
    def _accepted_at(self, value: datetime, **_: Any) -> None:
        check_date(value)


class SubmissionSchema(ma.Schema):
    """``POST /v1/verifications``: what a trader declared at signup."""

    trader_id = Text(required=True, max_length=100, single_line=True, blank=False,
                     metadata={"description": "The marketplace's own id of the trader"})
    name = Text(max_length=200)
    address = fields.Nested(AddressSchema)
    email = Email(max_length=254)
    phone = Text(max_length=40, single_line=True,
                 metadata={"description": "International format, or national with "
                           "address.country_code"})
    identification = fields.Nested(IdentificationSchema)
    payment = fields.Nested(PaymentSchema)
    registration = fields.Nested(RegistrationSchema)
    vat_number = Text(max_length=64, single_line=True)
    self_certification = fields.Nested(SelfCertificationSchema)
    locale = Text(max_length=35, single_line=True, validate=validate.Regexp(
        r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]{1,8})*$", error="Must be a language tag, e.g. fr-FR."),
        metadata={"description": "The trader's language (a language tag) for the messages it "
                  "reads: reasons, corrections, statements; en, fr and de are supported, any "
                  "other falls back to en"})

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
    verdict = fields.String(allow_none=True, validate=validate.OneOf(Verdict.values()))
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
    source = fields.String(metadata={"description": "automated (the checks decided) or manual "
                                     "(a reviewer's decision)"})
    settles_verification_id = fields.String(allow_none=True, metadata={
        "description": "manual: the automated verification the decision settles"})
    review_id = fields.String(allow_none=True)
    approval_kept = fields.Dict(allow_none=True, metadata={
        "description": "An automated verification that found the same facts as an approval in "
                       "force: {review_id, verification_id}; the trader's verdict stays the "
                       "approved one"})
    statement = fields.Dict(allow_none=True, metadata={
        "description": "The statement of reasons of a rejection: {id, url}"})
    trader = fields.Dict(allow_none=True, metadata={
        "description": "GET /v1/traders/{id}: the trader's Art 30(3) state (state, correction "
                       "{items, reasons, due_at}, suspended_at, reinstated_at)"})


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
                                              "not in the future, not before 2000-01-01"})

    @validates("ended_at")
    def _plausible(self, value: datetime, **_: Any) -> None:
        check_date(value)
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


# -- GET /v1/traders ------------------------------------------------------------------------------

#: The most traders one page of ``GET /v1/traders`` holds.
TRADERS_MAX_LIMIT = 200


class TradersQuerySchema(ma.Schema):
    """``GET /v1/traders``: filters, page size and where the page starts."""

    class Meta:
        unknown = ma.RAISE  # a misspelt filter is a 400, not a silently wider list

    limit = fields.Integer(load_default=50, validate=validate.Range(min=1,
                                                                    max=TRADERS_MAX_LIMIT))
    cursor = fields.String(validate=validate.Length(min=1, max=2000), metadata={
        "description": "The `next` of the previous page (opaque; valid with the same filters, "
                       "for the same tenant)"})
    verdict = fields.String(validate=validate.OneOf(Verdict.values()),
                            metadata={"description": "The current verdict"})
    state = fields.String(validate=validate.OneOf(
        ("active", "correction_requested", "suspended", "reinstated")),
        metadata={"description": "The Art 30(3) state (services/gateway/casework.py)"})
    country = fields.String(validate=_COUNTRY, metadata={
        "description": "The country of the current verification's address (ISO alpha-2)"})
    needs_review = fields.Boolean(metadata={
        "description": "true: only traders a person must review (verdict needs_review); "
                       "false: the others"})
    updated_since = fields.AwareDateTime(metadata={
        "description": "Traders changed at or after this time"})
    updated_until = fields.AwareDateTime(metadata={
        "description": "Traders changed before this time"})

    @validates_schema
    def _range(self, data: dict[str, Any], **_: Any) -> None:
        since, until = data.get("updated_since"), data.get("updated_until")
        if since is not None and until is not None and until <= since:
            raise ValidationError("Must be after updated_since.", "updated_until")


class TraderListItemSchema(ma.Schema):
    """A trader as ``GET /v1/traders`` lists it."""

    trader_id = fields.String()
    verdict = fields.String(allow_none=True, metadata={"description": "The current verdict; "
                                                       "null before the first settled one"})
    state = fields.String()
    country = fields.String(allow_none=True)
    current_verification_id = fields.String(allow_none=True)
    updated_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    correction_due_at = fields.DateTime(allow_none=True)


class TraderListSchema(ma.Schema):
    """One page of the tenant's traders, least recently changed first."""

    traders = fields.List(fields.Nested(TraderListItemSchema))
    next = fields.String(allow_none=True, metadata={
        "description": "The cursor of the next page (pass it as `cursor` with the same "
                       "filters); null on the last page"})
