"""Request and response schemas of the payment service (marshmallow; they also make the OpenAPI).

The request schema refuses unknown fields, non-strings, over-long values, control characters and
lone surrogates (:class:`shared.inputs.Text`) with a 400 that names the fields. Its messages
never repeat what was sent: an IBAN must not end up in an error body, and a field *name* that
could be one is masked (see :func:`_safe_field_name`).
"""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from services.payment import codes, ibans
from shared.inputs import Text

_CHECK_NAMES = ["length", "format", "checksum", "national_check_digits", "bank_code",
                "bic_format", "bic_iban_consistency", "sepa"]
_RESULTS = ["pass", "fail", "not_available", "warning"]
_SAFE_NAME = re.compile(r"[a-z_]{1,40}")


def _safe_field_name(name: object) -> str:
    """An unknown field's name as it may appear in an error: masked unless plainly a word.

    >>> _safe_field_name("iban_number"), _safe_field_name("DE89370400440532013000")
    ('iban_number', 'DE****3000')
    """
    text = str(name)
    return text if _SAFE_NAME.fullmatch(text) else ibans.mask(text)


def _codes(kind: str) -> str:
    return ", ".join(code for code, c in codes.CODES.items() if c.kind == kind)


class PaymentCheckRequestSchema(ma.Schema):
    """``POST /v1/payment/check``."""

    iban = Text(
        # not single_line: white space of any kind, line breaks too, is cleaned up (ibans.clean)
        required=True, max_length=64, blank=False,
        metadata={"description": "The IBAN. Spaces, lowercase, an 'IBAN' prefix, zero-width and "
                  "full-width characters are cleaned up; letters of other scripts are refused "
                  "(IBAN_CONFUSABLE_CHARACTERS).", "example": "DE89 3704 0044 0532 0130 00"},
    )
    bic = Text(
        min_length=1, max_length=64, single_line=True,
        metadata={"description": "The bank's BIC (8 or 11 characters), checked against the IBAN.",
                  "example": "COBADEFFXXX"},
    )
    account_holder = Text(
        min_length=1, max_length=140,
        metadata={"description": "The account holder's name as the trader gave it."},
    )
    trader_name = Text(
        min_length=1, max_length=140,
        metadata={"description": "The trader's name, compared with account_holder "
                  "(holder_match)."},
    )
    verify_payee = fields.Boolean(
        load_default=False,
        metadata={"description": "Ask the payee's bank (Verification of Payee) whether the "
                  "account is held by account_holder, or trader_name without one. Only then "
                  "can the status be 'unavailable'. Needs one of the two names."},
    )

    @ma.pre_load
    def _refuse_unknown(self, data: Any, **_: Any) -> Any:
        # marshmallow's own message would name the unknown field as sent; a client that put an
        # IBAN where a field name goes must not get it back.
        if isinstance(data, dict):
            unknown = [k for k in data if k not in self.fields]
            if unknown:
                raise ma.ValidationError({_safe_field_name(k): ["Unknown field."]
                                          for k in unknown})
        return data

    @ma.validates_schema
    def _names_for_payee(self, data: dict[str, Any], **_: Any) -> None:
        if data.get("verify_payee") and not (data.get("account_holder") or data.get("trader_name")):
            raise ma.ValidationError(
                "verify_payee needs account_holder or trader_name.", "verify_payee")


class CheckSchema(ma.Schema):
    """One check and its outcome."""

    name = fields.String(validate=validate.OneOf(_CHECK_NAMES))
    result = fields.String(validate=validate.OneOf(_RESULTS))
    detail = fields.String(metadata={"description": "What was found, in words a person can act "
                                     "on; never the IBAN"})
    code = fields.String(allow_none=True, metadata={"description": "The code of a fail or "
                                                    "warning (see errors and warnings)"})


class BankSchema(ma.Schema):
    """The IBAN's bank, from the bank directory."""

    name = fields.String(allow_none=True)
    bic = fields.String(allow_none=True, metadata={"description": "The directory's BIC for the "
                                                   "IBAN's bank code"})
    source = fields.String(allow_none=True, metadata={"description": "Which directory, with its "
                                                      "version; null when the bank is not in it"})


class SepaSchema(ma.Schema):
    """SEPA membership of the IBAN's country or territory."""

    member = fields.Boolean(allow_none=True, metadata={"description": "Null when the IBAN is "
                                                       "not well formed"})
    as_of = fields.String(metadata={"description": "Date of the SEPA list used"})
    source = fields.String(metadata={"description": "Where the SEPA list comes from"})


class HolderMatchSchema(ma.Schema):
    """account_holder compared with trader_name, locally (shared name normaliser)."""

    result = fields.String(validate=validate.OneOf(
        ["match", "close_match", "no_match", "not_possible"]))
    matched_name = fields.String(allow_none=True, metadata={"description": "With close_match "
                                                            "only: the trader_name matched"})
    score = fields.Float(allow_none=True, metadata={"description": "Similarity, 0..1"})
    detail = fields.String()


class PayeeSchema(ma.Schema):
    """The payee's bank's answer (Verification of Payee), when verify_payee was set."""

    result = fields.String(allow_none=True, validate=validate.OneOf(
        ["match", "close_match", "no_match", "not_possible"]),
        metadata={"description": "Null when the provider gave no answer (status unavailable)"})
    code = fields.String(allow_none=True, metadata={"description": "The scheme's code: MTCH, "
                                                    "CMTC, NMTC or NOAP"})
    matched_name = fields.String(allow_none=True, metadata={"description": "With CMTC only: the "
                                                            "holder's name the bank returned"})
    name_checked = fields.String(validate=validate.OneOf(["account_holder", "trader_name"]))
    source = fields.String(allow_none=True, metadata={"description": "vop, or cache for a "
                                                      "stored answer"})
    detail = fields.String()


class ErrorInfoSchema(ma.Schema):
    """Why the payee-verification provider gave no answer."""

    code = fields.String(metadata={"description": "One of: " + _codes("upstream")})
    retryable = fields.Boolean()
    message = fields.String()


class PaymentCheckResultSchema(ma.Schema):
    """The answer about one set of payment details."""

    status = fields.String(validate=validate.OneOf(["valid", "invalid", "unavailable"]))
    iban_masked = fields.String(metadata={"description": "Country code and last four "
                                          "characters only", "example": "DE****3000"})
    country_code = fields.String(allow_none=True)
    checks = fields.List(fields.Nested(CheckSchema))
    bank = fields.Nested(BankSchema)
    sepa = fields.Nested(SepaSchema)
    holder_match = fields.Nested(HolderMatchSchema)
    payee = fields.Nested(PayeeSchema, allow_none=True)
    errors = fields.List(fields.String(), metadata={"description": "Codes of the failed checks: "
                                                    + _codes("error")})
    warnings = fields.List(fields.String(), metadata={"description": "Codes worth a look: "
                                                      + _codes("warning")})
    account_fingerprint = fields.String(
        allow_none=True, metadata={"description": "HMAC-SHA256 of the normalised IBAN with the "
                                   "service's key, hex; the same account has the same "
                                   "fingerprint. Null when the IBAN is not well formed."})
    error = fields.Nested(ErrorInfoSchema, allow_none=True)
    retry_after_s = fields.Float(allow_none=True)
    sandbox = fields.Boolean()
    checked_at = fields.String()
