"""A trader submission: its fingerprint, and the redacted copy shown to staff.

The fingerprint is a SHA-256 over the canonical JSON of the normalised submission (keys
sorted, strings trimmed, IBAN and VAT number compacted and upper-cased) together with the
tenant (the marketplace) it is verified for: the same data in the same tenant gives the same
fingerprint, from whichever of the tenant's clients (they share the tenant's traders), while
another tenant, or any change of the data, gives another. It keys the verdict cache, so two
tenants never share a cached verdict, and it never carries personal data in clear.

**Self-certification on record.** When the client leaves ``self_certification.accepted_at``
out of an accepted certification, the gateway records the time it received the submission
(:func:`stamp`, with ``accepted_at_source: "gateway"``; a client's own time is marked
``"client"``). The stamp goes into the submission the evidence log keeps (sealed and
redacted), *after* the fingerprint is taken, and the fingerprint leaves it out: the same
submission sent again without ``accepted_at`` has the same fingerprint and is answered from
the verdict cache, and a re-verification of the stored (stamped) submission keys the same
cache entry as the client's. A time the client gives is part of the fingerprint as before.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

_SPACES = re.compile(r"[\s.\-]+")


def _trim(value: Any) -> Any:
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        # blanks are dropped once trimmed: " " is not given, like "" (and normalise stays
        # idempotent: a value trimmed to "" would otherwise go only on a second pass)
        trimmed = ((k, _trim(v)) for k, v in value.items())
        return {k: v for k, v in trimmed if v not in (None, "")}
    if isinstance(value, list):
        return [_trim(v) for v in value]
    return value


def normalise(submission: dict[str, Any]) -> dict[str, Any]:
    """The submission with blanks dropped, strings trimmed and numbers compacted; normalising
    it again changes nothing.

    >>> normalise({"vat_number": " de 136.695.976 ", "name": " ACME ", "email": "  "})
    {'vat_number': 'DE136695976', 'name': 'ACME'}
    >>> normalise({"trader_id": "t", "vat_number": " . - "})
    {'trader_id': 't'}
    >>> normalise({"registration": {"number": "B1", "not_registered": False}})
    {'registration': {'number': 'B1'}}
    """
    sub: dict[str, Any] = _trim(submission)
    registration = sub.get("registration")
    if registration and registration.get("not_registered") is False:
        del registration["not_registered"]  # the default: no different from leaving it out
    if sub.get("vat_number"):
        sub["vat_number"] = _SPACES.sub("", sub["vat_number"]).upper()
        if not sub["vat_number"]:
            del sub["vat_number"]
    payment = sub.get("payment")
    if payment and payment.get("kind") == "iban":
        del payment["kind"]  # the default: no different from leaving it out
    if payment and payment.get("iban"):
        payment["iban"] = re.sub(r"\s+", "", payment["iban"]).upper()
    if payment and payment.get("account_number"):
        payment["account_number"] = re.sub(r"[\s\-]+", "", payment["account_number"]).upper()
    if sub.get("email"):
        sub["email"] = sub["email"].lower()
    return sub


#: ``self_certification.accepted_at_source``: who gave ``accepted_at``.
STAMPED_BY_GATEWAY = "gateway"
GIVEN_BY_CLIENT = "client"


def stamp(sub: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    """``sub`` (normalised) with its self-certification's ``accepted_at`` on record: the
    client's (marked ``client``) or, for an accepted certification without one,
    ``received_at`` (marked ``gateway``). Stamping a stamped submission changes nothing.

    >>> from datetime import UTC
    >>> at = datetime(2026, 11, 30, 14, 0, tzinfo=UTC)
    >>> stamp({"self_certification": {"accepted": True}}, at)["self_certification"]
    {'accepted': True, 'accepted_at': '2026-11-30T14:00:00+00:00', 'accepted_at_source': 'gateway'}
    >>> stamp({"self_certification": {"accepted": False}}, at)["self_certification"]
    {'accepted': False}
    """
    cert = sub.get("self_certification")
    if not cert or cert.get("accepted_at_source"):
        return sub
    if cert.get("accepted_at"):
        cert = {**cert, "accepted_at_source": GIVEN_BY_CLIENT}
    elif cert.get("accepted") is True:
        cert = {**cert, "accepted_at": received_at.isoformat(),
                "accepted_at_source": STAMPED_BY_GATEWAY}
    else:
        return sub
    return {**sub, "self_certification": cert}


def _as_sent(sub: dict[str, Any]) -> dict[str, Any]:
    """``sub`` without what :func:`stamp` added: the submission as the client sent it."""
    cert = sub.get("self_certification")
    if not cert or "accepted_at_source" not in cert:
        return sub
    cert = {k: v for k, v in cert.items() if k != "accepted_at_source"}
    if sub["self_certification"]["accepted_at_source"] == STAMPED_BY_GATEWAY:
        cert.pop("accepted_at", None)
    return {**sub, "self_certification": cert}


def fingerprint(submission: dict[str, Any], tenant: str) -> str:
    """Hex SHA-256 of the normalised submission and the tenant (a gateway's stamp of
    ``accepted_at`` left out: :func:`stamp`).

    >>> sub = {"trader_id": "t1", "vat_number": "DE100"}
    >>> fingerprint(sub, "shop-a") == fingerprint(sub, "shop-b")
    False
    """
    canonical = json.dumps([tenant, _as_sent(normalise(submission))], sort_keys=True,
                           separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _mask(text: str, keep_start: int, keep_end: int) -> str:
    if len(text) <= keep_start + keep_end:
        return "*" * len(text)
    tail = text[len(text) - keep_end:]
    return text[:keep_start] + "*" * (len(text) - keep_start - keep_end) + tail


def mask_email(email: str) -> str:
    """``jane.doe@example.com`` → ``j*******@example.com``.

    >>> mask_email("jane.doe@example.com")
    'j*******@example.com'
    """
    local, _, domain = email.partition("@")
    return _mask(local, 1, 0) + "@" + domain


def mask_iban(iban: str) -> str:
    """Country code and last four characters only.

    >>> mask_iban("DE89370400440532013000")
    'DE****************3000'
    """
    return _mask(iban, 2, 4)


def redact(submission: dict[str, Any]) -> dict[str, Any]:
    """A copy safe to store in clear and show to staff: e-mail, phone, IBAN (or account
    number or wallet reference) and document reference masked; everything else as submitted
    (names and addresses are what is checked).

    >>> redact({"payment": {"kind": "account", "account_number": "6222 0210 0104 3210"}})
    {'payment': {'kind': 'account', 'account_number': '************3210'}}
    """
    sub = normalise(submission)
    if sub.get("email"):
        sub["email"] = mask_email(sub["email"])
    if sub.get("phone"):
        sub["phone"] = _mask(sub["phone"], 3, 3)
    ident = sub.get("identification")
    if ident and ident.get("reference"):
        ident["reference"] = _mask(ident["reference"], 0, 3)
    payment = sub.get("payment")
    if payment and payment.get("iban"):
        payment["iban"] = mask_iban(payment["iban"])
    for key in ("account_number", "reference"):  # accounts without an IBAN: last four only
        if payment and payment.get(key):
            payment[key] = _mask(payment[key], 0, 4)
    return sub
