"""From the three services' answers to one traceability verdict.

:func:`decide` is pure: the submission, the checks and the verdict policy in, the verdict out,
so every rule is tested without a network. Each reason's severity is the policy's
(:mod:`services.gateway.policy`; by default the catalogue's, :mod:`services.gateway.reasons`).
The verdict is the strongest severity among the reasons: any ``error`` → ``rejected``; else
any ``pending`` → ``pending``; else any ``warning`` → ``needs_review``; else ``verified``. An
upstream fault is ``pending``, never ``rejected``, whatever the policy.

Corroboration (30(1)(a)): what the trader declared is only ``verified`` when a source other
than the trader confirms it: the name by VIES or the business register (not the account
holder, which the trader also declares), and the address (postcode and city, and the street
where both sides give one separately: :func:`shared.names.compare_address`) by VIES or the
register. A source holding another address raises ``ADDRESS_MISMATCH``, with both addresses
in ``evidence.address_corroboration``. A name carrying the legal form of a registered company
(``SAS``, ``GmbH``, ``Ltd``...: :func:`shared.names.registered_company_form`) with no
registration raises ``REGISTRATION_EXPECTED``; a sole trader declares
``registration: {"not_registered": true}`` and 30(1)(d) is then ``not_applicable``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from services.gateway.answers import (
    Checks,
    ErrorInfo,
    InputInvalid,
    PaymentAnswer,
    RegistryAnswer,
    VatAnswer,
)
from services.gateway.policy import DEFAULT_POLICY, Policy
from services.gateway.reasons import ITEMS, Verdict, reason
from shared import names

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
    #: What the verdict adds to the verification's evidence: ``policy_sha256``,
    #: ``address_corroboration``, ``registration_declared``.
    evidence: dict[str, Any] = field(default_factory=dict)


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


def _code(error: ErrorInfo | None) -> str | None:
    return error["code"] if error else None


def _vat_reasons(vat: VatAnswer | None) -> list[dict[str, str]]:
    if vat is None:
        return []
    if vat["status"] == "valid":
        return [reason("VAT_CHECKED_STALE")] if vat["stale"] else []
    if vat["status"] == "invalid":
        # VIES not listing a well-formed number is not proof it is wrong: numbers registered
        # for domestic trade only are not in VIES. A wrong format or check digit is, and so
        # is a national register's own answer (HMRC, the Swiss UID register: reason = source).
        if vat["reason"] == "vies" or vat["source"].startswith("vies"):
            return [reason("VAT_NOT_IN_VIES", vat["detail"])]
        return [reason("VAT_INVALID", vat["detail"])]
    if vat["status"] == "unverifiable":  # no online source (a non-EU prefix, GB without HMRC)
        return [reason("VAT_UNVERIFIABLE", vat["detail"])]
    if vat["status"] == "input_invalid":
        return [reason("VAT_INPUT_INVALID", _fields(vat))]
    code = _code(vat["error"])
    if code == "VAT_BLOCKED":
        return [reason("VAT_BLOCKED")]
    if code in _REQUESTER_FAULTS:
        return [reason("VIES_REFUSED_REQUESTER", code)]
    return [reason("VAT_UNAVAILABLE", code)]


def _registry_reasons(reg: RegistryAnswer | None) -> list[dict[str, str]]:
    if reg is None:
        return []
    if reg["status"] == "active":
        return []
    if reg["status"] == "inactive":
        return [reason("REGISTER_INACTIVE", reg["status_raw"])]
    if reg["status"] == "not_found":
        return [reason("REGISTER_NOT_FOUND")]
    if reg["status"] == "invalid":
        return [reason("REGISTRATION_NUMBER_INVALID", reg["detail"])]
    if reg["status"] == "unverifiable":
        return [reason("REGISTER_UNVERIFIABLE", reg["detail"])]
    if reg["status"] == "input_invalid":
        return [reason("REGISTRATION_INPUT_INVALID", _fields(reg))]
    return [reason("REGISTER_UNAVAILABLE", _code(reg["error"]))]


def _payment_reasons(pay: PaymentAnswer | None, links: Sequence[Link],
                     holder_given: bool) -> list[dict[str, str]]:
    if pay is None:
        return [reason("MISSING_PAYMENT")]
    if pay["status"] == "input_invalid":
        return [reason("PAYMENT_INPUT_INVALID", _fields(pay))]
    if pay["status"] == "invalid":
        kind = pay["kind"]  # an account without an IBAN: never IBAN_INVALID
        return [reason("IBAN_INVALID" if kind == "iban" else "PAYMENT_ACCOUNT_INVALID",
                       ", ".join(pay["errors"]) or None)]
    if pay["status"] != "valid":
        return [reason("PAYMENT_CHECK_UNAVAILABLE", _code(pay["error"]))]
    kind = pay["kind"]
    out = [] if kind == "iban" else [reason("PAYMENT_ACCOUNT_NOT_IBAN", kind)]
    # The bank's Verification of Payee answer and the local holder/trader name comparison:
    # the worse of the two counts.
    payee = pay["payee"]["result"] if pay["payee"] else None
    results = {payee, pay["holder_match"]["result"]}
    if "no_match" in results:
        out.append(reason("PAYEE_NAME_MISMATCH"))
    elif "close_match" in results:
        out.append(reason("PAYEE_NAME_CLOSE_MATCH"))
    elif payee == "not_possible" and holder_given:
        out.append(reason("PAYEE_NAME_NOT_CHECKED"))
    if any(c["name"] == "bic_iban_consistency" and c["result"] == "warning"
           for c in pay["checks"]):
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
    rejected = [link for link in links if link.verdict == Verdict.REJECTED]
    identity = []
    if rejected:
        keys = sorted({v for link in rejected for v in link.via})
        identity.append(reason("LINKED_TO_REJECTED_TRADER",
                               f"{len(rejected)} rejected trader(s), same {', '.join(keys)}"))
    return register, identity


def declared_registration(sub: dict[str, Any]) -> str | None:
    """What the trader declared about its registration: ``number``, ``not_registered`` (a
    sole trader with no register entry) or None (nothing)."""
    registration = sub.get("registration") or {}
    if _present(registration.get("number")):
        return "number"
    return "not_registered" if registration.get("not_registered") is True else None


def _registration_expected(sub: dict[str, Any]) -> list[dict[str, str]]:
    """``REGISTRATION_EXPECTED`` when the name carries a registered company's legal form and
    no registration number was given (declaring "not registered" does not change the form)."""
    if declared_registration(sub) == "number":
        return []
    country = (sub.get("registration") or {}).get("country_code") or (
        sub.get("address") or {}).get("country_code")
    form = names.registered_company_form(sub.get("name"), country)
    if form is None:
        return []
    said = ("; declared not registered" if declared_registration(sub) == "not_registered"
            else "")
    return [reason("REGISTRATION_EXPECTED", f"legal form {form}{said}")]


def _source_addresses(checks: Checks) -> dict[str, dict[str, str | None]]:
    """The addresses the sources other than the trader hold: VIES's (its approximate-matching
    parts, and its address line) and the business register's (its address line)."""
    vat, reg = checks["vat"], checks["registry"]
    found: dict[str, dict[str, str | None]] = {}
    if vat is not None and vat["status"] == "valid":
        trader = vat["trader"] or {}
        parts = {k: trader.get(k) for k in ("street", "postcode", "city") if trader.get(k)}
        if parts or vat["address"]:
            found["vies"] = {**parts, "text": vat["address"]}
    if reg is not None and (reg["status"] == "active" or reg["status"] == "inactive"):
        parts = {k: v for k, v in (reg["registered_address"] or {}).items()
                 if k in ("street", "postcode", "city") and v}
        if parts or reg["address"]:
            found["register"] = {**parts, "text": reg["address"]}
    return found


def address_corroboration(sub: dict[str, Any], checks: Checks) -> dict[str, Any]:
    """The declared address, each source's, and how they compare (the evidence of 30(1)(a))."""
    address = sub.get("address") or {}
    declared = {k: address.get(k) for k in ("street", "postcode", "city", "country_code")
                if address.get(k)}
    sources = []
    for source, held in _source_addresses(checks).items():
        m = names.compare_address(declared, street=held.get("street"),
                                  postcode=held.get("postcode"), city=held.get("city"),
                                  text=held.get("text"))
        sources.append({"source": source, "address": {k: v for k, v in held.items() if v},
                        "postcode": m.postcode, "city": m.city, "street": m.street,
                        "verdict": m.verdict})
    return {"declared": declared, "sources": sources}


def _address_reasons(corroboration: dict[str, Any]) -> list[dict[str, str]]:
    mismatched = [s["source"] for s in corroboration["sources"] if s["verdict"] == "mismatch"]
    if not mismatched or not corroboration["declared"]:
        return []
    return [reason("ADDRESS_MISMATCH", f"address held by {', '.join(mismatched)}")]


def _self_cert_reasons(sub: dict[str, Any]) -> list[dict[str, str]]:
    cert = sub.get("self_certification")
    if not cert:
        return [reason("MISSING_SELF_CERTIFICATION")]
    if cert.get("accepted") is not True:
        return [reason("SELF_CERTIFICATION_NOT_ACCEPTED")]
    return []


def _fields(check: InputInvalid) -> str | None:
    errors = check["errors"]
    return ", ".join(sorted(errors)) if isinstance(errors, dict) else None


def name_consistency(sub: dict[str, Any], checks: Checks) -> dict[str, Any]:
    """The names the sources hold for the trader, and each pair's score and verdict."""
    vat, reg, pay = checks["vat"], checks["registry"], checks["payment"]
    country = (sub.get("address") or {}).get("country_code")
    found = {
        "declared": sub.get("name"),
        "vies": vat["name"] if vat is not None and vat["status"] == "valid" else None,
        "register": reg["registered_name"] if reg is not None and (
            reg["status"] == "active" or reg["status"] == "inactive") else None,
        "account_holder": (sub.get("payment") or {}).get("account_holder") if pay else None,
    }
    present = {k: v for k, v in found.items() if v}
    pairs = []
    for (ka, a), (kb, b) in combinations(present.items(), 2):
        m = names.compare(a, b, country)
        pairs.append({"a": ka, "b": kb, "score": round(m.score, 3), "verdict": m.verdict,
                      "compared": [m.a, m.b], "legal_forms": list(m.legal_forms)})
    return {"names": present, "pairs": pairs}


def _name_reasons(consistency: dict[str, Any]) -> list[dict[str, str]]:
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


def decide(sub: dict[str, Any], checks: Checks,
           links: Sequence[Link] = (), policy: Policy = DEFAULT_POLICY) -> Decision:
    """The verdict for submission ``sub`` given the services' answers in ``checks``, under
    the verdict ``policy``.

    ``checks`` holds ``vat``, ``registry`` and ``payment`` answers, or None where the service
    was not asked (no VAT number, no registration, no payment details). ``links`` are the
    other traders whose current verification used the same payment account, VAT number or
    registration (:meth:`EvidenceLog.linked_traders`).
    """
    consistency = name_consistency(sub, checks)
    corroboration = address_corroboration(sub, checks)
    register_links, identity_links = _link_reasons(links)
    contact = _contact_reasons(sub)
    address = [] if contact else _address_reasons(corroboration)
    ident = [] if _present((sub.get("identification") or {}).get("type")) else [
        reason("MISSING_IDENTIFICATION")]
    payment = _payment_reasons(checks["payment"], links,
                               _present((sub.get("payment") or {}).get("account_holder")))
    expected = _registration_expected(sub)
    register = (_vat_reasons(checks["vat"]) + _registry_reasons(checks["registry"])
                + expected + _name_reasons(consistency) + register_links)
    cert = _self_cert_reasons(sub)
    reasons = contact + address + identity_links + ident + payment + register + cert
    for r in reasons:  # the marketplace's policy says what each reason does
        r["severity"] = policy.severity(r["code"])

    confirmed_name = any(p["a"] == "declared" and p["b"] in ("vies", "register")
                         and p["verdict"] != "no_match" for p in consistency["pairs"])
    confirmed_address = any(s["verdict"] == "match" for s in corroboration["sources"])
    has_d = checks["vat"] is not None or checks["registry"] is not None or bool(expected)
    items = {
        ITEMS["a"]: _item_status(contact + address + identity_links, missing=bool(contact),
                                 verified=confirmed_name and confirmed_address),
        ITEMS["b"]: "missing" if ident else "unverified",  # presence only: documents not read
        ITEMS["c"]: _item_status(payment, missing=checks["payment"] is None),
        ITEMS["d"]: _item_status(register) if has_d else "not_applicable",
        ITEMS["e"]: "missing" if not sub.get("self_certification") else _item_status(cert),
    }
    severities = {r["severity"] for r in reasons}
    if "error" in severities:
        verdict = Verdict.REJECTED
    elif "pending" in severities:
        verdict = Verdict.PENDING
    elif "warning" in severities:
        verdict = Verdict.NEEDS_REVIEW
    else:
        verdict = Verdict.VERIFIED
    evidence = {"policy_sha256": policy.sha256, "address_corroboration": corroboration,
                "registration_declared": declared_registration(sub)}
    return Decision(verdict, items, reasons, consistency, evidence)
