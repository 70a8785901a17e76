"""Traders with VAT numbers outside VIES, end to end in sandbox: the gateway, the VAT service as
a real process, and the HMRC, UID register and Brønnøysund simulators over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.conftest import Suite
from tests.gateway.test_flow import post

BASE: dict[str, Any] = {
    "email": "sales@example.com",
    "phone": "+44 20 7946 0000",
    "identification": {"type": "national_id", "reference": "ID-1"},
    "self_certification": {"accepted": True, "accepted_at": "2026-11-28T10:00:00+00:00"},
}

TRADERS: dict[str, dict[str, Any]] = {
    "GB": {
        "trader_id": "britannia-widgets", "name": "Britannia Widgets Ltd",
        "address": {"street": "12 Canal Street", "postcode": "M1 3HE", "city": "Manchester",
                    "country_code": "GB"},
        "payment": {"iban": "GB82WEST12345698765432",
                    "account_holder": "Britannia Widgets Ltd"},
        "vat_number": "GB 980 7806 84",
        "registration": {"country_code": "GB", "number": "09876543"},
    },
    "CH": {
        "trader_id": "uhrwerk", "name": "Uhrwerk Manufaktur AG",
        "address": {"street": "Bahnhofstrasse 12", "postcode": "8001", "city": "Zürich",
                    "country_code": "CH"},
        "payment": {"iban": "CH9300762011623852957", "account_holder": "Uhrwerk Manufaktur AG"},
        "vat_number": "CHE-116.281.704 MWST",
        "registration": {"country_code": "CH", "number": "CHE-116.281.704"},
    },
    "NO": {
        "trader_id": "nordisk-fisk", "name": "Nordisk Fisk AS",
        "address": {"street": "Bryggen 5", "postcode": "5003", "city": "Bergen",
                    "country_code": "NO"},
        "payment": {"iban": "NO9386011117947", "account_holder": "Nordisk Fisk AS"},
        "vat_number": "NO 912 345 602 MVA",
        "registration": {"country_code": "NO", "number": "912345602"},
    },
}

#: What the VAT service answers for each: the normalised number and which source answered.
EXPECTED = {"GB": ("GB980780684", "hmrc"), "CH": ("CHE116281704", "uid"),
            "NO": ("NO912345602MVA", "brreg")}


@pytest.mark.parametrize("country", sorted(TRADERS))
def test_trader_outside_vies_is_verified_against_its_own_register(
        client: FlaskClient, suite: Suite, country: str) -> None:
    resp = post(client, {**BASE, **TRADERS[country]}, wait=15)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    vat = body["checks"]["vat"]
    number, source = EXPECTED[country]
    assert vat["status"] == "valid" and vat["source"] == source, vat
    assert vat["vat_number"] == number
    assert not {r["code"] for r in body["reasons"]} & {"VAT_INVALID", "VAT_UNAVAILABLE",
                                                       "VAT_UNVERIFIABLE"}
    if country == "CH":
        # The Swiss UID is checked as a VAT number; the registry service has no online
        # register for Switzerland yet, so 30(1)(d) goes to a person (a register extract).
        assert body["verdict"] == "needs_review", body["reasons"]
        assert {r["code"] for r in body["reasons"] if r["severity"] == "warning"} == {
            "REGISTER_UNVERIFIABLE"}
        return
    assert body["verdict"] == "verified", body["reasons"]
    assert body["items"]["30(1)(d)"] == "verified"
    if country == "GB":  # HMRC's consultation number is kept as evidence, like VIES's
        assert vat["consultation_number"]
        assert body["evidence"]["vies_consultation_number"] == vat["consultation_number"]


def test_gb_number_hmrc_does_not_know_is_not_verified(client: FlaskClient) -> None:
    body = post(client, {**BASE, **TRADERS["GB"], "vat_number": "GB980780642"},
                wait=15).get_json()
    assert body["checks"]["vat"]["status"] == "invalid"
    assert body["checks"]["vat"]["source"] == "hmrc"
    assert body["verdict"] != "verified"


def test_a_number_with_no_online_register_goes_to_review(client: FlaskClient) -> None:
    us = {**TRADERS["GB"], "trader_id": "us-seller", "vat_number": "US123456789"}
    body = post(client, {**BASE, **us}, wait=15).get_json()
    assert body["checks"]["vat"]["status"] == "unverifiable"
    assert "VAT_UNVERIFIABLE" in {r["code"] for r in body["reasons"]}
    assert body["verdict"] == "needs_review"


def test_hmrc_outage_is_pending_never_rejected(client: FlaskClient, suite: Suite) -> None:
    suite.configure("hmrc-simulator", fail=503)
    try:
        body = post(client, {**BASE, **TRADERS["GB"]}, wait=15).get_json()
    finally:
        suite.restore("hmrc-simulator")
    assert body["checks"]["vat"]["status"] == "unavailable"
    assert "VAT_UNAVAILABLE" in {r["code"] for r in body["reasons"]}
    assert body["verdict"] == "pending"


def test_vies_soap_down_the_rest_api_answers(client: FlaskClient, suite: Suite) -> None:
    from tests.gateway.test_flow import GOOD

    suite.configure("vies-simulator", front_ends_down=["soap"])
    try:
        body = post(client, GOOD, wait=15).get_json()
    finally:
        suite.restore("vies-simulator")
    assert body["checks"]["vat"]["status"] == "valid"
    assert body["checks"]["vat"]["source"] == "vies-rest"
    assert body["verdict"] == "verified", body["reasons"]
