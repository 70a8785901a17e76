"""From the three services' answers to one traceability verdict.

:func:`decide` is pure: the submission and the checks in, the verdict out, so every rule is
tested without a network. The verdict is the strongest severity among the reasons
(:mod:`services.gateway.reasons`): any ``error`` → ``rejected``; else any ``pending`` →
``pending``; else any ``warning`` → ``needs_review``; else ``verified``. An upstream fault is
``pending``, never ``rejected``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from services.gateway.reasons import ITEMS, reason
from shared import names

VERDICTS = ("verified", "needs_review", "rejected", "pending")

#: VIES faults that are about the marketplace's request, not the trader's number.
_REQUESTER_FAULTS = {"INVALID_REQUESTER_INFO", "IP_BLOCKED"}


@dataclass(frozen=True)
class Link:
    """Another trader whose current verification shares an identity key with this one:
    ``via`` names which (``account``, ``vat``, ``registration``); ``verdict`` is its own."""

    trader_id: str
    verdict: str | None
    via: frozenset[str]


@dataclass
class Decision:
    """A verdict with everything that explains it."""

    verdict: str
    items: dict[str, str]
    reasons: list[dict[str, str]]
    name_consistency: dict[str, Any] = field(default_factory=dict)


def _present(*values: Any) -> bool:
    return all(v not in (None, "", {}, []) for v in values)


def _contact_reasons(sub: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    if not _present(sub.get("name")):
        out.append(reason("MISSING_NAME"))
    address = sub.get("address") or {}
    if not all(_present(address.get(k)) for k in ("street", "postcode", "city", "country_code")):
        out.append(reason("MISSING_ADDRESS"))
    if not _present(sub.get("email")):
        out.append(reason("MISSING_EMAIL"))
    if not _present(sub.get("phone")):
        out.append(reason("MISSING_PHONE"))
    return out


def _vat_reasons(vat: dict[str, Any] | None) -> list[dict[str, str]]:
    if vat is None:
        return []
    status = vat.get("status")
    if status == "valid":
        return [reason("VAT_CHECKED_STALE")] if vat.get("stale") else []
    if status == "invalid":
        return [reason("VAT_INVALID", vat.get("detail"))]
    if status == "input_invalid":
        return [reason("VAT_INPUT_INVALID", _fields(vat))]
    if status == "unverifiable":  # no online source (a non-EU prefix, GB without HMRC)
        return [reason("VAT_UNVERIFIABLE", vat.get("detail"))]
    error = vat.get("error") or {}
    code = error.get("code")
    if code == "VAT_BLOCKED":
        return [reason("VAT_BLOCKED")]
    if code in _REQUESTER_FAULTS:
        return [reason("VIES_REFUSED_REQUESTER", code)]
    return [reason("VAT_UNAVAILABLE", code)]


def _registry_reasons(reg: dict[str, Any] | None) -> list[dict[str, str]]:
    if reg is None:
        return []
    status = reg.get("status")
    if status == "active":
        return []
    if status == "inactive":
        return [reason("REGISTER_INACTIVE", reg.get("status_raw"))]
    if status == "not_found":
        return [reason("REGISTER_NOT_FOUND")]
    if status == "invalid":
        return [reason("REGISTRATION_NUMBER_INVALID", reg.get("detail"))]
    if status == "unverifiable":
        return [reason("REGISTER_UNVERIFIABLE", reg.get("detail"))]
    if status == "input_invalid":
        return [reason("REGISTRATION_INPUT_INVALID", _fields(reg))]
    return [reason("REGISTER_UNAVAILABLE", (reg.get("error") or {}).get("code"))]


def _payment_reasons(pay: dict[str, Any] | None, links: Sequence[Link],
                     holder_given: bool) -> list[dict[str, str]]:
    if pay is None:
        return [reason("MISSING_PAYMENT")]
    status = pay.get("status")
    if status == "input_invalid":
        return [reason("PAYMENT_INPUT_INVALID", _fields(pay))]
    kind = pay.get("kind") or "iban"  # an account without an IBAN: never IBAN_INVALID
    if status == "invalid":
        return [reason("IBAN_INVALID" if kind == "iban" else "PAYMENT_ACCOUNT_INVALID",
                       ", ".join(pay.get("errors") or []) or None)]
    if status != "valid":
        return [reason("PAYMENT_CHECK_UNAVAILABLE", (pay.get("error") or {}).get("code"))]
    out = [] if kind == "iban" else [reason("PAYMENT_ACCOUNT_NOT_IBAN", kind)]
    # The bank's Verification of Payee answer and the local holder/trader name comparison:
    # the worse of the two counts.
    payee = (pay.get("payee") or {}).get("result")
    results = {payee, (pay.get("holder_match") or {}).get("result")}
    if "no_match" in results:
        out.append(reason("PAYEE_NAME_MISMATCH"))
    elif "close_match" in results:
        out.append(reason("PAYEE_NAME_CLOSE_MATCH"))
    elif payee == "not_possible" and holder_given:
        out.append(reason("PAYEE_NAME_NOT_CHECKED"))
    if any(c.get("name") == "bic_iban_consistency" and c.get("result") == "warning"
           for c in pay.get("checks") or []):
        out.append(reason("BIC_WARNING"))
    shared = [link for link in links if "account" in link.via]
    if shared:
        out.append(reason("ACCOUNT_SHARED", f"{len(shared)} other trader(s)"))
    return out


def _link_reasons(links: Sequence[Link]) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """Reasons of item (d) (a VAT number or registration used by other traders) and of item
    (a) (a link to a rejected trader: a seller coming back under another name)."""
    register = []
    for via, code in (("vat", "VAT_NUMBER_SHARED"), ("registration", "REGISTRATION_SHARED")):
        shared = [link for link in links if via in link.via]
        if shared:
            register.append(reason(code, f"{len(shared)} other trader(s)"))
    rejected = [link for link in links if link.verdict == "rejected"]
    identity = []
    if rejected:
        keys = sorted({v for link in rejected for v in link.via})
        identity.append(reason("LINKED_TO_REJECTED_TRADER",
                               f"{len(rejected)} rejected trader(s), same {', '.join(keys)}"))
    return register, identity


def _self_cert_reasons(sub: dict[str, Any]) -> list[dict[str, str]]:
    cert = sub.get("self_certification")
    if not cert:
        return [reason("MISSING_SELF_CERTIFICATION")]
    if cert.get("accepted") is not True:
        return [reason("SELF_CERTIFICATION_NOT_ACCEPTED")]
    return []


def _fields(check: dict[str, Any]) -> str | None:
    errors = check.get("errors")
    return ", ".join(sorted(errors)) if isinstance(errors, dict) else None


def name_consistency(sub: dict[str, Any], checks: dict[str, Any]) -> dict[str, Any]:
    """The names the sources hold for the trader, and each pair's score and verdict."""
    vat, reg, pay = checks.get("vat") or {}, checks.get("registry") or {}, checks.get("payment")
    country = (sub.get("address") or {}).get("country_code")
    found = {
        "declared": sub.get("name"),
        "vies": vat.get("name") if vat.get("status") == "valid" else None,
        "register": reg.get("registered_name") if reg.get("status") in ("active", "inactive")
        else None,
        "account_holder": (sub.get("payment") or {}).get("account_holder") if pay else None,
    }
    present = {k: v for k, v in found.items() if v}
    pairs = []
    for (ka, a), (kb, b) in combinations(present.items(), 2):
        m = names.compare(a, b, country)
        pairs.append({"a": ka, "b": kb, "score": round(m.score, 3), "verdict": m.verdict,
                      "compared": [m.a, m.b], "legal_forms": list(m.legal_forms)})
    return {"names": present, "pairs": pairs}


def _name_reasons(consistency: dict[str, Any], reg: dict[str, Any] | None) -> list[dict]:
    out = []
    for pair in consistency["pairs"]:
        if pair["a"] == "declared" and pair["verdict"] == "no_match":
            if pair["b"] == "vies":
                out.append(reason("VIES_NAME_MISMATCH"))
            elif pair["b"] == "register":
                out.append(reason("REGISTER_NAME_MISMATCH"))
    return out


def _item_status(item_reasons: list[dict[str, str]], *, missing: bool = False,
                 verified: bool = True) -> str:
    severities = {r["severity"] for r in item_reasons}
    if missing:
        return "missing"
    if "error" in severities:
        return "failed"
    if severities & {"pending", "warning"} or not verified:
        return "unverified"
    return "verified"


def decide(sub: dict[str, Any], checks: dict[str, Any],
           links: Sequence[Link] = ()) -> Decision:
    """The verdict for submission ``sub`` given the services' answers in ``checks``.

    ``checks`` holds ``vat``, ``registry`` and ``payment`` answers, or None where the service
    was not asked (no VAT number, no registration, no payment details). ``links`` are the
    other traders whose current verification used the same payment account, VAT number or
    registration (:meth:`EvidenceLog.linked_traders`).
    """
    consistency = name_consistency(sub, checks)
    register_links, identity_links = _link_reasons(links)
    contact = _contact_reasons(sub)
    ident = [] if _present((sub.get("identification") or {}).get("type")) else [
        reason("MISSING_IDENTIFICATION")]
    payment = _payment_reasons(checks.get("payment"), links,
                               _present((sub.get("payment") or {}).get("account_holder")))
    register = (_vat_reasons(checks.get("vat")) + _registry_reasons(checks.get("registry"))
                + _name_reasons(consistency, checks.get("registry")) + register_links)
    cert = _self_cert_reasons(sub)
    reasons = contact + identity_links + ident + payment + register + cert

    confirmed_name = any(p["a"] == "declared" and p["verdict"] != "no_match"
                         for p in consistency["pairs"])
    has_d = checks.get("vat") is not None or checks.get("registry") is not None
    items = {
        ITEMS["a"]: _item_status(contact + identity_links, missing=bool(contact),
                                 verified=confirmed_name),
        ITEMS["b"]: "missing" if ident else "unverified",  # presence only: documents not read
        ITEMS["c"]: _item_status(payment, missing=checks.get("payment") is None),
        ITEMS["d"]: _item_status(register) if has_d else "not_applicable",
        ITEMS["e"]: "missing" if not sub.get("self_certification") else _item_status(cert),
    }
    severities = {r["severity"] for r in reasons}
    if "error" in severities:
        verdict = "rejected"
    elif "pending" in severities:
        verdict = "pending"
    elif "warning" in severities:
        verdict = "needs_review"
    else:
        verdict = "verified"
    return Decision(verdict, items, reasons, consistency)
