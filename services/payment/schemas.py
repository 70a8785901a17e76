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
                "bic_format", "bic_iban_consistency", "sepa", "account_number_format",
                "bic_country", "account_country"]
#: The fields of each ``kind`` (besides the names and verify_payee, which every kind takes).
KIND_FIELDS = {"iban": ("iban", "bic"), "account": ("account_number", "bic", "country_code"),
               "other": ("reference", "provider")}
_REQUIRED = {"iban": ("iban",), "account": ("account_number", "bic", "country_code"),
             "other": ("reference",)}
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
    """``POST /v1/payment/check``.

    ``kind`` says what the account is: ``iban`` (the default) takes ``iban`` (and ``bic``);
    ``account``, an account without an IBAN, takes ``account_number``, ``bic`` and
    ``country_code``; ``other``, a wallet or payment processor, takes ``reference`` (and
    ``provider``). A field of another kind is refused, so nothing sent goes unchecked.
    """

    kind = fields.String(
        load_default="iban", validate=validate.OneOf(list(KIND_FIELDS)),
        metadata={"description": "iban (default), account (an account number with the bank's "
                  "BIC, for countries without IBANs) or other (a wallet or payment-processor "
                  "reference)."},
    )
    iban = Text(
        # not single_line: white space of any kind, line breaks too, is cleaned up (ibans.clean)
        max_length=64, blank=False,
        metadata={"description": "The IBAN. Spaces, lowercase, an 'IBAN' prefix, zero-width and "
                  "full-width characters are cleaned up; letters of other scripts are refused "
                  "(IBAN_CONFUSABLE_CHARACTERS).", "example": "DE89 3704 0044 0532 0130 00"},
    )
    bic = Text(
        min_length=1, max_length=64, single_line=True,
        metadata={"description": "The bank's BIC (8 or 11 characters), checked against the IBAN, "
                  "or against country_code with kind account (required then).",
                  "example": "COBADEFFXXX"},
    )
    account_number = Text(
        # not single_line: cleaned up like an IBAN (accounts.compact_account)
        max_length=64, blank=False,
        metadata={"description": "kind account (required): the account number, A-Z and 0-9, at "
                  "most 34 once spaces and hyphens are dropped.", "example": "6222021001043210"},
    )
    country_code = Text(
        max_length=2, single_line=True,
        validate=validate.Regexp(r"^[A-Z]{2}$", error="Must be an ISO 3166 alpha-2 code, e.g. US."),
        metadata={"description": "kind account (required): the country of the account, checked "
                  "against the BIC's.", "example": "CN"},
    )
    reference = Text(
        max_length=200, single_line=True, blank=False,
        metadata={"description": "kind other (required): the wallet or payment-processor "
                  "account reference (an account id, an e-mail address)."},
    )
    provider = Text(
        min_length=1, max_length=100, single_line=True,
        metadata={"description": "kind other: who holds the account (the processor's name).",
                  "example": "PayPal"},
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
    def _fields_of_kind(self, data: dict[str, Any], **_: Any) -> None:
        kind = data.get("kind", "iban")
        errors: dict[str, list[str]] = {}
        for name in _REQUIRED[kind]:
            if name not in data:
                errors[name] = [f"Missing data for required field (kind {kind})."]
        for names in KIND_FIELDS.values():
            for name in names:
                if name in data and name not in KIND_FIELDS[kind]:
                    errors[name] = [f"Not used with kind {kind}."]
        if errors:
            raise ma.ValidationError(errors)

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
                                                       "not well formed, or there is no IBAN"})
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
    kind = fields.String(validate=validate.OneOf(list(KIND_FIELDS)))
    iban_masked = fields.String(allow_none=True, metadata={
        "description": "Country code and last four characters only; null for another kind",
        "example": "DE****3000"})
    account_masked = fields.String(allow_none=True, metadata={
        "description": "kind account or other: the last four characters of the account number "
                       "or reference only", "example": "****3210"})
    provider = fields.String(allow_none=True, metadata={"description": "kind other: the "
                                                        "provider as given"})
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
        allow_none=True, metadata={"description": "HMAC-SHA256 of the normalised IBAN (kind "
                                   "account: of the kind, the BIC's first 8 characters and the "
                                   "account number; kind other: of the kind and the reference) "
                                   "with the service's key, hex; the same account has the same "
                                   "fingerprint. Null when the account is not well formed."})
    error = fields.Nested(ErrorInfoSchema, allow_none=True)
    retry_after_s = fields.Float(allow_none=True)
    sandbox = fields.Boolean()
    checked_at = fields.String()
