"""Every verdict rule and every reason code, on the pure decision function."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from services.gateway.policy import DEFAULT_POLICY, Policy
from services.gateway.reasons import (
    CATALOGUE,
    ITEM_A,
    ITEM_B,
    ITEM_C,
    ITEM_D,
    ITEM_E,
    OUTSIDE_THE_VERDICT,
    reason,
)
from services.gateway.verdicts import Link, decide
from tests.gateway import service_answers

SUB: dict[str, Any] = {
    "trader_id": "t-1",
    "name": "Rodrisa Automoviles S.L.",
    "address": {"street": "Avda. Reina Victoria", "postcode": "28430", "city": "Madrid",
                "country_code": "ES"},
    "email": "ventas@rodrisa.example",
    "phone": "+34 910 000 000",
    "identification": {"type": "national_id", "reference": "X1234567"},
    "payment": {"iban": "ES9121000418450200051332", "account_holder": "Rodrisa Automoviles SL"},
    "registration": {"country_code": "ES", "number": "B83891812", "kind": "cif"},
    "vat_number": "ESB83891812",
    "self_certification": {"accepted": True},
}
VAT_OK = {"status": "valid", "name": "RODRISA AUTOMOVILES SL", "consultation_number": "WAPI1",
          "address": "AVDA. REINA VICTORIA\n28430 MADRID",
          "trader": {"street": "Avda. Reina Victoria", "postcode": "28430", "city": "Madrid"}}
REG_OK = {"status": "active", "registered_name": "Rodrisa Automóviles, S.L.", "status_raw": "A",
          "address": "AVENIDA REINA VICTORIA, 28430 MADRID, ES"}
PAY_OK = {"status": "valid", "holder_match": {"result": "match"},
          "checks": [{"name": "bic_iban_consistency", "result": "pass"}],
          "account_fingerprint": "f" * 64}


def run(sub_changes: dict | None = None, *, vat: Any = VAT_OK, registry: Any = REG_OK,
        payment: Any = PAY_OK, shared: list[str] | None = None,
        links: list[Link] | None = None, drop: tuple[str, ...] = (),
        policy: Policy = DEFAULT_POLICY):
    """``shared``: traders using the same payment account (verified); ``links``: any."""
    sub = copy.deepcopy(SUB)
    sub.update(sub_changes or {})
    for key in drop:
        sub.pop(key, None)
    linked = [Link(t, "verified", frozenset({"account"})) for t in shared or []]
    return decide(sub, service_answers.checks(vat, registry, payment),
                  linked + (links or []), policy)


def codes(decision) -> set[str]:
    return {r["code"] for r in decision.reasons}


def test_all_good_is_verified() -> None:
    d = run()
    assert d.verdict == "verified", d.reasons
    assert d.reasons == []
    assert d.items == {ITEM_A: "verified", ITEM_B: "unverified", ITEM_C: "verified",
                       ITEM_D: "verified", ITEM_E: "verified"}
    pairs = {(p["a"], p["b"]): p["verdict"] for p in d.name_consistency["pairs"]}
    assert pairs[("declared", "register")] == "match"
    assert pairs[("declared", "account_holder")] == "match"


def test_sole_trader_without_register_or_vat() -> None:
    d = run({"name": "Rosa Rodriguez", "registration": {"not_registered": True},
             "payment": {"iban": "ES9121000418450200051332",
                         "account_holder": "Rosa Rodriguez"}},
            vat=None, registry=None, drop=("vat_number",))
    assert d.verdict == "verified", d.reasons
    assert d.items[ITEM_D] == "not_applicable"
    assert d.evidence["registration_declared"] == "not_registered"
    # Only the trader (and its own account holder) vouch for the name and the address.
    assert d.items[ITEM_A] == "unverified"


# code -> (arguments of run, expected verdict, expected item status)
CASES: dict[str, tuple[dict[str, Any], str, tuple[str, str]]] = {
    "MISSING_NAME": ({"drop": ("name",)}, "rejected", (ITEM_A, "missing")),
    "MISSING_ADDRESS": ({"sub_changes": {"address": {"city": "Madrid"}}}, "rejected",
                        (ITEM_A, "missing")),
    "MISSING_EMAIL": ({"drop": ("email",)}, "rejected", (ITEM_A, "missing")),
    "MISSING_PHONE": ({"drop": ("phone",)}, "rejected", (ITEM_A, "missing")),
    "MISSING_IDENTIFICATION": ({"drop": ("identification",)}, "rejected", (ITEM_B, "missing")),
    "MISSING_PAYMENT": ({"drop": ("payment",), "payment": None}, "rejected",
                        (ITEM_C, "missing")),
    "IBAN_INVALID": ({"payment": {"status": "invalid", "errors": ["IBAN_CHECKSUM"]}},
                     "rejected", (ITEM_C, "failed")),
    "PAYMENT_INPUT_INVALID": ({"payment": {"status": "input_invalid",
                                           "errors": {"bic": ["bad"]}}},
                              "rejected", (ITEM_C, "failed")),
    "PAYMENT_ACCOUNT_INVALID": ({"payment": {"status": "invalid", "kind": "account",
                                             "errors": ["BIC_ACCOUNT_COUNTRY_MISMATCH"]}},
                                "rejected", (ITEM_C, "failed")),
    "PAYMENT_ACCOUNT_NOT_IBAN": ({"payment": {**PAY_OK, "kind": "other"}}, "needs_review",
                                 (ITEM_C, "unverified")),
    "PAYMENT_CHECK_UNAVAILABLE": ({"payment": {"status": "unavailable",
                                               "error": {"code": "VOP_TIMEOUT"}}},
                                  "pending", (ITEM_C, "unverified")),
    "PAYEE_NAME_MISMATCH": ({"payment": {**PAY_OK, "payee": {"result": "no_match"}}},
                            "needs_review", (ITEM_C, "unverified")),
    "PAYEE_NAME_CLOSE_MATCH": ({"payment": {**PAY_OK, "holder_match": {
        "result": "close_match", "matched_name": "Rodrisa"}}}, "needs_review",
        (ITEM_C, "unverified")),
    "PAYEE_NAME_NOT_CHECKED": ({"payment": {**PAY_OK, "payee": {
        "result": "not_possible", "code": "NOAP"}}}, "verified", (ITEM_C, "verified")),
    "BIC_WARNING": ({"payment": {**PAY_OK, "checks": [
        {"name": "bic_iban_consistency", "result": "warning"}]}}, "verified",
        (ITEM_C, "verified")),
    "ACCOUNT_SHARED": ({"shared": ["t-2", "t-3"]}, "needs_review", (ITEM_C, "unverified")),
    "LINKED_TO_REJECTED_TRADER": (
        {"links": [Link("t-old", "rejected", frozenset({"account"}))]}, "needs_review",
        (ITEM_A, "unverified")),
    "VAT_NUMBER_SHARED": ({"links": [Link("t-2", "verified", frozenset({"vat"}))]},
                          "needs_review", (ITEM_D, "unverified")),
    "REGISTRATION_SHARED": ({"links": [Link("t-2", "needs_review",
                                            frozenset({"registration"}))]},
                            "needs_review", (ITEM_D, "unverified")),
    "REGISTRATION_NUMBER_INVALID": ({"registry": {"status": "invalid", "detail": "checksum"}},
                                    "rejected", (ITEM_D, "failed")),
    "REGISTRATION_INPUT_INVALID": ({"registry": {"status": "input_invalid",
                                                 "errors": {"kind": ["unknown"]}}},
                                   "rejected", (ITEM_D, "failed")),
    "REGISTER_NOT_FOUND": ({"registry": {"status": "not_found"}}, "rejected",
                           (ITEM_D, "failed")),
    "REGISTER_INACTIVE": ({"registry": {"status": "inactive", "status_raw": "dissolved",
                                        "registered_name": "Rodrisa Automoviles SL"}},
                          "rejected", (ITEM_D, "failed")),
    "REGISTER_UNVERIFIABLE": ({"registry": {"status": "unverifiable"}}, "needs_review",
                              (ITEM_D, "unverified")),
    "REGISTER_UNAVAILABLE": ({"registry": {"status": "unavailable",
                                           "error": {"code": "UPSTREAM_TIMEOUT"}}},
                             "pending", (ITEM_D, "unverified")),
    "REGISTER_NAME_MISMATCH": ({"registry": {**REG_OK, "registered_name": "Zeta Holdings AG"}},
                               "needs_review", (ITEM_D, "unverified")),
    "VAT_INVALID": ({"vat": {"status": "invalid", "reason": "checksum"}}, "rejected",
                    (ITEM_D, "failed")),
    "VAT_NOT_IN_VIES": ({"vat": {"status": "invalid", "reason": "vies", "source": "vies"}},
                        "needs_review", (ITEM_D, "unverified")),
    "VAT_UNVERIFIABLE": ({"vat": {"status": "unverifiable", "detail": "no HMRC credentials"}},
                         "needs_review", (ITEM_D, "unverified")),
    "ADDRESS_MISMATCH": ({"registry": {**REG_OK, "address": "CALLE MAYOR 1, 41001 SEVILLA"}},
                         "needs_review", (ITEM_A, "unverified")),
    "REGISTRATION_EXPECTED": ({"drop": ("registration",), "registry": None}, "needs_review",
                              (ITEM_D, "unverified")),
    "VAT_INPUT_INVALID": ({"vat": {"status": "input_invalid", "errors": {"vat_number": ["x"]}}},
                          "rejected", (ITEM_D, "failed")),
    "VAT_UNAVAILABLE": ({"vat": {"status": "unavailable", "error": {
        "code": "MS_UNAVAILABLE", "retryable": True}}}, "pending", (ITEM_D, "unverified")),
    "VAT_BLOCKED": ({"vat": {"status": "unavailable", "error": {
        "code": "VAT_BLOCKED", "retryable": False}}}, "needs_review", (ITEM_D, "unverified")),
    "VIES_REFUSED_REQUESTER": ({"vat": {"status": "unavailable", "error": {
        "code": "INVALID_REQUESTER_INFO", "retryable": False}}}, "needs_review",
        (ITEM_D, "unverified")),
    "VIES_NAME_MISMATCH": ({"vat": {**VAT_OK, "name": "Omega Trading GmbH"}}, "needs_review",
                           (ITEM_D, "unverified")),
    "VAT_CHECKED_STALE": ({"vat": {**VAT_OK, "stale": True}}, "verified", (ITEM_D, "verified")),
    "MISSING_SELF_CERTIFICATION": ({"drop": ("self_certification",)}, "rejected",
                                   (ITEM_E, "missing")),
    "SELF_CERTIFICATION_NOT_ACCEPTED": ({"sub_changes": {"self_certification": {
        "accepted": False}}}, "rejected", (ITEM_E, "failed")),
}


def test_every_reason_code_has_a_case() -> None:
    # the others are raised elsewhere, and tested there (tests/gateway/test_documents.py)
    assert set(CASES) == set(CATALOGUE) - OUTSIDE_THE_VERDICT
    assert OUTSIDE_THE_VERDICT <= set(CATALOGUE)


@pytest.mark.parametrize("code", sorted(CASES))
def test_reason_code(code: str) -> None:
    kwargs, verdict, (item, status) = CASES[code]
    d = run(**kwargs)
    assert code in codes(d), d.reasons
    assert d.verdict == verdict
    assert d.items[item] == status
    r = next(r for r in d.reasons if r["code"] == code)
    assert r["item"] == CATALOGUE[code].item == item
    assert r["message"]


def test_local_holder_mismatch_also_counts() -> None:
    d = run(payment={**PAY_OK, "holder_match": {"result": "no_match"},
                     "payee": {"result": "match"}})
    assert "PAYEE_NAME_MISMATCH" in codes(d)


def test_a_rejected_seller_back_under_a_new_name() -> None:
    """The repeat offender: a new trader id, another name, the rejected trader's VAT number.
    Each link is reported once, with what links it; only the trader count is in the detail
    (the message goes to the trader: no other trader's id)."""
    d = run(links=[Link("t-banned", "rejected", frozenset({"vat", "account"})),
                   Link("t-ok", "verified", frozenset({"vat"}))])
    found = {r["code"]: r for r in d.reasons}
    assert d.verdict == "needs_review"
    assert found["LINKED_TO_REJECTED_TRADER"]["detail"] == (
        "1 rejected trader(s), same account, vat")
    assert found["VAT_NUMBER_SHARED"]["detail"] == "2 other trader(s)"
    assert found["ACCOUNT_SHARED"]["detail"] == "1 other trader(s)"
    assert "t-banned" not in str(d.reasons)
    assert d.items[ITEM_A] == "unverified"  # not "missing": name and contact were given


def test_rejected_beats_pending_beats_review() -> None:
    pending_and_review = run(vat={"status": "unavailable", "error": {"code": "TIMEOUT"}},
                             shared=["t-9"])
    assert pending_and_review.verdict == "pending"
    rejected = run(vat={"status": "unavailable", "error": {"code": "TIMEOUT"}},
                   registry={"status": "inactive"})
    assert rejected.verdict == "rejected"


def test_upstream_fault_is_never_rejected() -> None:
    d = run(vat={"status": "unavailable", "error": {"code": "SERVICE_TIMEOUT"}},
            registry={"status": "unavailable", "error": {"code": "SERVICE_UNREACHABLE"}},
            payment={"status": "unavailable", "error": {"code": "SERVICE_HTTP_503"}})
    assert d.verdict == "pending"
    assert all(r["severity"] == "pending" for r in d.reasons)


def test_reason_helper_adds_detail() -> None:
    assert reason("VAT_INVALID", "x")["detail"] == "x"
    assert "detail" not in reason("VAT_INVALID")


# -- corroboration of 30(1)(a) and 30(1)(d) ----------------------------------------------------

def test_a_register_address_in_another_city_needs_review_with_both_addresses() -> None:
    d = run(registry={**REG_OK, "address": "CALLE MAYOR 1, 41001 SEVILLA, ES"})
    assert d.verdict == "needs_review"
    found = {r["code"]: r for r in d.reasons}
    assert found["ADDRESS_MISMATCH"]["detail"] == "address held by register"
    corroboration = d.evidence["address_corroboration"]
    assert corroboration["declared"] == SUB["address"]
    by_source = {s["source"]: s for s in corroboration["sources"]}
    assert by_source["register"]["address"]["text"] == "CALLE MAYOR 1, 41001 SEVILLA, ES"
    assert (by_source["register"]["postcode"], by_source["register"]["city"]) == (
        "not_found", "not_found")
    assert by_source["vies"]["verdict"] == "match"


def test_vies_parts_with_another_street_in_the_same_town_is_a_mismatch() -> None:
    vat = {**VAT_OK, "trader": {**VAT_OK["trader"], "street": "Calle de Alcala 1"}}
    d = run(vat=vat, registry={**REG_OK, "address": None})
    assert "ADDRESS_MISMATCH" in codes(d)
    [vies] = d.evidence["address_corroboration"]["sources"]
    assert (vies["postcode"], vies["city"], vies["street"]) == ("match", "match", "mismatch")


def test_another_postcode_given_as_a_part_is_a_mismatch_even_in_the_same_city() -> None:
    vat = {**VAT_OK, "trader": {**VAT_OK["trader"], "postcode": "28013"}}
    assert "ADDRESS_MISMATCH" in codes(run(vat=vat, registry={**REG_OK, "address": None}))


def test_accents_case_and_spacing_do_not_count() -> None:
    sub = {"address": {"street": "avenida reina victoria", "postcode": "28 430",
                       "city": "MADRÍD", "country_code": "ES"}}
    d = run(sub)
    assert d.verdict == "verified", d.reasons
    assert d.items[ITEM_A] == "verified"


def test_a_city_spelt_otherwise_beside_the_same_postcode_is_unconfirmed_not_flagged() -> None:
    d = run({"address": {**SUB["address"], "city": "Villalba"}},
            vat={**VAT_OK, "trader": None, "address": None})
    assert "ADDRESS_MISMATCH" not in codes(d)
    assert d.verdict == "verified"
    [register] = d.evidence["address_corroboration"]["sources"]
    assert register["verdict"] == "unconfirmed"
    assert d.items[ITEM_A] == "unverified"  # nobody confirmed the address


def test_no_source_address_leaves_a_unverified_without_a_reason() -> None:
    """Germany's VIES discloses nothing; without a register nobody confirms the address."""
    d = run(vat={"status": "valid", "name": None, "address": None}, registry=None,
            drop=("registration",), sub_changes={"name": "Rodrisa Automoviles"})
    assert d.verdict == "verified", d.reasons
    assert d.evidence["address_corroboration"]["sources"] == []
    assert d.items[ITEM_A] == "unverified"


def test_the_name_must_be_confirmed_by_a_source_other_than_the_trader() -> None:
    """The address matches, but only the account holder (declared by the trader) carries the
    name: VIES hides it and the register's record is another company's name."""
    d = run(vat={**VAT_OK, "name": None},
            registry={**REG_OK, "registered_name": "Zeta Holdings AG"})
    assert d.items[ITEM_A] == "unverified"


def test_a_company_declaring_itself_not_registered_still_needs_its_registration() -> None:
    d = run({"registration": {"not_registered": True}}, registry=None)
    found = {r["code"]: r for r in d.reasons}
    assert found["REGISTRATION_EXPECTED"]["detail"] == "legal form SL; declared not registered"
    assert d.verdict == "needs_review"
    assert d.items[ITEM_D] == "unverified"


def test_a_company_with_its_registration_is_not_asked_for_it() -> None:
    assert "REGISTRATION_EXPECTED" not in codes(run())


def test_a_name_without_a_company_form_and_no_registration_is_not_applicable() -> None:
    d = run({"name": "Rosa Rodriguez"}, vat=None, registry=None,
            drop=("registration", "vat_number"))
    assert "REGISTRATION_EXPECTED" not in codes(d)
    assert d.items[ITEM_D] == "not_applicable"
    assert d.evidence["registration_declared"] is None


def test_a_sole_traders_form_expects_no_registration() -> None:
    d = run({"name": "Jean Dupont EI", "address": {**SUB["address"], "country_code": "FR"},
             "registration": {"not_registered": True}}, vat=None, registry=None,
            drop=("vat_number",))
    assert "REGISTRATION_EXPECTED" not in codes(d)
    assert d.items[ITEM_D] == "not_applicable"


def test_a_vat_number_vies_does_not_list_is_review_with_a_message_to_act_on() -> None:
    d = run(vat={"status": "invalid", "reason": "vies", "source": "vies",
                 "detail": "VIES reports the number as not valid."})
    [r] = [r for r in d.reasons if r["code"] == "VAT_NOT_IN_VIES"]
    assert r["severity"] == "warning" and d.verdict == "needs_review"
    assert "domestic" in r["message"] and "tax office" in r["message"]


@pytest.mark.parametrize("why", ["format", "checksum"])
def test_a_vat_number_failing_format_or_check_digits_is_rejected(why: str) -> None:
    d = run(vat={"status": "invalid", "reason": why, "source": "local"})
    assert "VAT_INVALID" in codes(d) and d.verdict == "rejected"


def test_every_verdict_records_the_policy_hash() -> None:
    assert run().evidence["policy_sha256"] == DEFAULT_POLICY.sha256


def test_the_registers_address_in_parts_compares_the_street_too() -> None:
    parts = {"street": "Avenida Reina Victoria", "postcode": "28430", "city": "Madrid",
             "country": "ES"}
    same = run(registry={**REG_OK, "registered_address": parts})
    assert same.verdict == "verified" and same.items[ITEM_A] == "verified"
    other = run(vat={**VAT_OK, "trader": None, "address": None},
                registry={**REG_OK, "registered_address": {**parts, "street": "Calle Mayor 1"}})
    assert "ADDRESS_MISMATCH" in codes(other)
    [register] = other.evidence["address_corroboration"]["sources"]
    assert (register["street"], register["verdict"]) == ("mismatch", "mismatch")
    assert register["address"]["street"] == "Calle Mayor 1"


@pytest.mark.parametrize("source", ["vies-soap", "vies-rest"])
def test_either_vies_front_end_not_listing_a_number_is_review(source: str) -> None:
    d = run(vat={"status": "invalid", "reason": "vies", "source": source})
    assert codes(d) == {"VAT_NOT_IN_VIES"} and d.verdict == "needs_review"


def test_a_national_vat_register_not_listing_a_number_is_rejected() -> None:
    """HMRC (or the Swiss UID register) is the tax authority's own register, not VIES."""
    d = run(vat={"status": "invalid", "reason": "hmrc", "source": "hmrc"})
    assert codes(d) >= {"VAT_INVALID"} and d.verdict == "rejected"
