"""``POST /v1/registry/check`` end to end: in-process against the simulator and real Redis, and
once under gunicorn as a real process."""

from __future__ import annotations

import pytest
import requests
from flask.testing import FlaskClient

from services.registry import create_app, kinds
from services.registry.registers.gleif import Gleif
from services.registry.registers.http import new_session
from tests.conftest import AUTH, INTERNAL_TOKEN, REDIS_URL, Processes, gunicorn_argv
from tests.registry.conftest import app_config, configure, stats

URL = "/v1/registry/check"


def check(client: FlaskClient, **body: object) -> dict:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


# body → (status, kind, status_raw, registered name, source id)
CASES = [
    ({"number": "5299009TRACE30ACME93"}, "active", "lei", "ISSUED/ACTIVE", "ACME Handels GmbH",
     "gleif"),
    ({"number": "5299009TRACE30NORD32"}, "inactive", "lei", "LAPSED/ACTIVE",
     "Nordlicht Trading AS", "gleif"),
    ({"number": "2138009TRACE30MILL84", "country_code": "GB"}, "inactive", "lei",
     "RETIRED/INACTIVE", "OLD MILL TRADING LTD", "gleif"),
    ({"number": "5299009TRACE30UNKN10"}, "not_found", "lei", None, None, "gleif"),
    ({"number": "812 345 676", "country_code": "FR"}, "active", "siren", "A",
     "BOULANGERIE MARTIN", "fr_recherche"),
    ({"number": "798765434", "country_code": "fr"}, "inactive", "siren", "C", "ATELIER DUPONT",
     "fr_recherche"),
    ({"number": "81234567600025", "country_code": "FR"}, "inactive", "siret", "A/F",
     "BOULANGERIE MARTIN", "fr_recherche"),
    ({"number": "888000114", "country_code": "FR"}, "not_found", "siren", None, None,
     "fr_recherche"),
    ({"number": "912 345 602", "country_code": "NO"}, "active", "orgnr", "active",
     "NORDISK FISK AS", "no_brreg"),
    ({"number": "912345610", "country_code": "NO"}, "inactive", "orgnr", "bankrupt",
     "BERGEN KONKURSBO AS", "no_brreg"),
    ({"number": "912345629", "country_code": "NO"}, "inactive", "orgnr", "under liquidation",
     "FJORD AVVIKLING AS", "no_brreg"),
    ({"number": "912345653", "country_code": "NO"}, "inactive", "orgnr", "deleted", None,
     "no_brreg"),
    ({"number": "912345688", "country_code": "NO"}, "not_found", "orgnr", None, None,
     "no_brreg"),
    ({"number": "01234567", "country_code": "GB"}, "active", "company_number", "active",
     "ACME TRADING LIMITED", "gb_companies_house"),
    ({"number": "sc123456", "country_code": "UK"}, "inactive", "company_number", "dissolved",
     "HIGHLAND WOOL LTD", "gb_companies_house"),
    ({"number": "6402", "country_code": "GB"}, "inactive", "company_number", "liquidation",
     "RENABLE DEMO LTD", "gb_companies_house"),
    ({"number": "NI012345", "country_code": "GB"}, "inactive", "company_number",
     "administration", "BELFAST BIKES LIMITED", "gb_companies_house"),
    ({"number": "09999999", "country_code": "GB"}, "not_found", "company_number", None, None,
     "gb_companies_house"),
    ({"number": "DK 35 12 34 58", "country_code": "DK"}, "active", "cvr", "NORMAL",
     "NORDISK DESIGN A/S", "dk_cvr"),
    ({"number": "37345679", "country_code": "DK"}, "inactive", "cvr", "OPLØSTEFTERKONKURS",
     "GAMLE HUS ApS", "dk_cvr"),
    ({"number": "39567806", "country_code": "DK"}, "not_found", "cvr", None, None, "dk_cvr"),
    ({"number": "273 00 307", "country_code": "CZ"}, "active", "ico", "AKTIVNI",
     "NOVÁ TECHNIKA s.r.o.", "cz_ares"),
    ({"number": "27300315", "country_code": "CZ"}, "inactive", "ico", "ZANIKLY",
     "MORAVSKÝ OBCHOD a.s.", "cz_ares"),
    ({"number": "IČO 7300344", "country_code": "CZ"}, "inactive", "ico", "ZANIKLY", "Jan Novák",
     "cz_ares"),
    ({"number": "27300331", "country_code": "CZ"}, "not_found", "ico", None, None, "cz_ares"),
    ({"number": "KRS 0000730030", "country_code": "PL"}, "active", "krs", "active",
     "WISŁA HANDEL SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ", "pl_krs"),
    ({"number": "730049", "country_code": "PL"}, "inactive", "krs", "liquidation",
     "ODRA LOGISTYKA SPÓŁKA AKCYJNA W LIKWIDACJI", "pl_krs"),
    ({"number": "0000730065", "country_code": "PL"}, "inactive", "krs", "deleted",
     "STARY RYNEK SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ", "pl_krs"),
    ({"number": "0000730073", "country_code": "PL", "kind": "krs"}, "active", "krs", "active",
     "FUNDACJA ZIELONY KRAKÓW", "pl_krs"),
    ({"number": "0000730081", "country_code": "PL"}, "not_found", "krs", None, None, "pl_krs"),
]


@pytest.mark.parametrize(("body", "status", "kind", "raw", "name", "source"), CASES)
def test_lookup_statuses(client: FlaskClient, body: dict, status: str, kind: str,
                         raw: str | None, name: str | None, source: str) -> None:
    r = check(client, **body)
    assert (r["status"], r["kind"], r["status_raw"], r["registered_name"]) == (
        status, kind, raw, name)
    assert r["source"]["id"] == source and r["source"]["name"]
    assert r["format_valid"] is True and r["cached"] is False and r["sandbox"] is True
    assert r["checked_at"].endswith("Z")
    if status in ("active", "inactive"):
        assert r["source"]["url"].startswith("https://")
    else:
        assert r["source"]["url"] is None and r["detail"]


def test_active_answer_has_every_field(client: FlaskClient) -> None:
    r = check(client, number="01234567", country_code="GB", name="Acme Trading Ltd")
    assert set(r) == {
        "status", "country_code", "kind", "normalised", "format_valid", "reason", "detail",
        "registered_name", "legal_form", "address", "registered_address", "status_raw",
        "status_detail", "ceased_on", "registered_as", "source", "name_match", "checked_at",
        "cached", "sandbox", "attempts", "error", "retry_after_s",
    }
    assert r["normalised"] == "01234567" and r["legal_form"] == "ltd"
    assert r["address"] == "1 Market Street, London, EC1A 1BB, England"
    assert r["registered_address"] == {"street": "1 Market Street", "postcode": "EC1A 1BB",
                                       "city": "London", "country": "England"}
    assert r["name_match"] == {
        "score": 1.0, "verdict": "match", "declared": "acme trading",
        "registered": "acme trading", "legal_forms": {"declared": "LTD", "registered": "LTD"},
    }


def test_czech_ico_through_ares(client: FlaskClient) -> None:
    r = check(client, number="27300307", country_code="CZ", kind="ico",
              name="Nová Technika s.r.o.")
    assert (r["status"], r["kind"], r["normalised"]) == ("active", "ico", "27300307")
    assert r["registered_name"] == "NOVÁ TECHNIKA s.r.o."
    assert r["legal_form"] == "112 Společnost s ručením omezeným"
    assert (r["status_raw"], r["status_detail"], r["ceased_on"]) == ("AKTIVNI", None, None)
    assert r["address"] == "Na Příkopě 859/22, Nové Město, 11000 Praha"
    assert r["registered_address"] == {"street": "Na Příkopě 859/22", "postcode": "11000",
                                       "city": "Praha", "country": "Česká republika"}
    assert r["source"] == {"id": "cz_ares", "name": "ARES (Administrativní registr ekonomických "
                           "subjektů)", "url": "https://ares.gov.cz/ekonomicke-subjekty?ico=27300307"}
    assert r["name_match"]["verdict"] == "match"
    assert r["name_match"]["legal_forms"] == {"declared": "SRO", "registered": "SRO"}
    dissolved = check(client, number="27300315", country_code="CZ", kind="ico")
    assert (dissolved["status"], dissolved["status_raw"], dissolved["ceased_on"]) == (
        "inactive", "ZANIKLY", "2023-06-30")
    assert dissolved["legal_form"] == "121 Akciová společnost"
    assert dissolved["status_detail"] == "datumZaniku 2023-06-30"
    assert dissolved["source"]["url"] == "https://ares.gov.cz/ekonomicke-subjekty?ico=27300315"


def test_polish_krs_through_the_api_krs(client: FlaskClient) -> None:
    r = check(client, number="0000730030", country_code="PL", kind="krs",
              name="Wisła Handel sp. z o.o.")
    assert (r["status"], r["kind"], r["normalised"]) == ("active", "krs", "0000730030")
    assert r["registered_name"] == "WISŁA HANDEL SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert r["legal_form"] == "SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert (r["status_raw"], r["status_detail"]) == ("active", None)
    assert r["address"] == "UL. DŁUGA 5/2, 00-950 WARSZAWA, POLSKA"
    assert r["registered_address"] == {"street": "UL. DŁUGA 5/2", "postcode": "00-950",
                                       "city": "WARSZAWA", "country": "POLSKA"}
    assert r["source"]["id"] == "pl_krs" and r["source"]["name"].startswith("Krajowy Rejestr")
    assert r["source"]["url"] == ("https://api-krs.ms.gov.pl/api/krs/OdpisAktualny/0000730030"
                                  "?rejestr=P&format=json")
    assert r["name_match"]["verdict"] == "match"
    bankrupt = check(client, number="0000730057", country_code="PL", kind="krs")
    assert (bankrupt["status"], bankrupt["status_raw"], bankrupt["status_detail"]) == (
        "inactive", "bankruptcy", "dzial6.postepowanieUpadlosciowe")
    deleted = check(client, number="730065", country_code="PL", kind="krs")
    assert (deleted["status"], deleted["status_raw"], deleted["ceased_on"]) == (
        "inactive", "deleted", "2022-08-12")
    assert deleted["legal_form"] == "SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert deleted["source"]["url"] == ("https://api-krs.ms.gov.pl/api/krs/OdpisPelny/0000730065"
                                        "?rejestr=P&format=json")
    foundation = check(client, number="0000730073", country_code="PL", kind="krs")
    assert foundation["source"]["url"].endswith("/OdpisAktualny/0000730073?rejestr=S&format=json")


@pytest.mark.parametrize(
    ("name", "verdict"),
    [("Boulangerie Martin SAS", "match"), ("Boulangerie Martin SARL", "close"),
     ("Boulangerie Martine", "match"), ("Pâtisserie Dupuis", "no_match")],
)
def test_name_verdicts(client: FlaskClient, name: str, verdict: str) -> None:
    r = check(client, number="812345676", country_code="FR", name=name)
    assert r["name_match"]["verdict"] == verdict
    assert r["name_match"]["registered"] == "boulangerie martin"


def test_invalid_unverifiable_and_unavailable(client: FlaskClient, sim: str) -> None:
    r = check(client, number="812345677", country_code="FR")
    assert (r["status"], r["format_valid"], r["reason"]) == ("invalid", False, "checksum")
    r = check(client, number="192598184", country_code="PL")  # KRS numbers have a register
    assert (r["status"], r["kind"], r["format_valid"]) == ("unverifiable", "regon", True)
    assert "extract" in r["detail"]
    r = check(client, number="HRB 13085", register="Amtsgericht Fürth", country_code="DE")
    assert (r["status"], r["normalised"]) == ("unverifiable", "Fürth HRB 13085")
    configure(sim, sources={"gleif": {"fail": 503}})
    r = check(client, number="5299009TRACE30ACME93")
    assert r["status"] == "unavailable"
    assert r["error"]["retryable"] is True and r["retry_after_s"] > 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "number"),
        ({"number": ""}, "number"),
        ({"number": "1" * 65, "country_code": "FR"}, "number"),
        ({"number": "552008443", "country_code": "FRA"}, "country_code"),
        ({"number": "552008443", "country_code": "F1"}, "country_code"),
        ({"number": "552008443", "kind": "siret_number"}, "kind"),
        ({"number": "552008443", "country_code": "FR", "colour": "red"}, "colour"),
        ({"number": 552008443, "country_code": "FR"}, "number"),
        ({"number": "552008443", "country_code": "GB", "kind": "siren"}, "kind"),
        ({"number": "552008443", "country_code": "FR", "name": "x" * 301}, "name"),
        ({"number": "HRB 1", "country_code": "DE", "register": "M" * 101}, "register"),
        ({"number": "552008443"}, "country_code"),
        ({"number": "552008443", "country_code": "FR", "register": "Paris"}, "register"),
        ({"number": "552008443", "country_code": "FR", "max_age_s": -1}, "max_age_s"),
    ],
)
def test_bad_input_is_400_problem(client: FlaskClient, body: dict, field: str) -> None:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert problem["status"] == 400 and problem["type"].startswith("https://trace30.dev/problems/")
    assert field in problem["errors"], problem


def test_not_json_is_400(client: FlaskClient) -> None:
    resp = client.post(URL, data="number=552008443", headers=AUTH,
                       content_type="application/x-www-form-urlencoded")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"
    assert "number" in resp.get_json()["errors"]
    resp = client.post(URL, data="{not json", headers=AUTH, content_type="application/json")
    assert resp.status_code == 400 and resp.mimetype == "application/problem+json"


def test_needs_the_internal_token(client: FlaskClient) -> None:
    resp = client.post(URL, json={"number": "552008443", "country_code": "FR"})
    assert resp.status_code == 401 and resp.mimetype == "application/problem+json"


def test_openapi_documents_the_route(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/v1/registry/check"]["post"]
    assert "200" in operation["responses"] and "400" in operation["responses"]
    schemas = spec["components"]["schemas"]
    kinds = schemas["RegistryCheckRequest"]["properties"]["kind"]["enum"]
    assert {"siren", "company_number", "lei", "krs", "rea", "kvk"} <= set(kinds)


def test_under_gunicorn_in_sandbox(processes: Processes, registers_sim: str, redis_prefix: str,
                                   sim: str) -> None:
    base = processes.start(
        gunicorn_argv("services.registry.wsgi:app", workers=2, threads=2),
        env={
            "TRACE30_SANDBOX": "1",
            "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
            "TRACE30_REDIS_URL": REDIS_URL,
            "TRACE30_REDIS_PREFIX": redis_prefix,
            "TRACE30_REGISTRY_GLEIF_URL": registers_sim + "/gleif/api/v1",
            "TRACE30_REGISTRY_FR_RECHERCHE_URL": registers_sim + "/recherche-entreprises",
            "TRACE30_REGISTRY_NO_BRREG_URL": registers_sim + "/brreg/enhetsregisteret/api",
            "TRACE30_REGISTRY_GB_COMPANIES_HOUSE_URL": registers_sim + "/companies-house",
            "TRACE30_REGISTRY_DK_CVR_URL": registers_sim + "/cvr",
            "TRACE30_REGISTRY_CZ_ARES_URL": registers_sim + "/ares/ekonomicke-subjekty-v-be/rest",
            "TRACE30_REGISTRY_PL_KRS_URL": registers_sim + "/krs/api/krs",
        },
    )
    headers = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}
    answers = [
        requests.post(base + URL, json={"number": number, "country_code": cc}, headers=headers,
                      timeout=10).json()
        for number, cc in [("01234567", "GB"), ("35123458", "DK"), ("01234567", "GB")]
    ]
    assert [a["status"] for a in answers] == ["active", "active", "active"]
    assert [a["cached"] for a in answers] == [False, False, True]  # shared by the workers
    assert requests.get(base + "/readyz", timeout=5).status_code == 200


def test_a_number_no_request_can_carry_is_a_400_naming_it(
        client: FlaskClient, sim: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Behind the format check (bypassed here), the adapter refuses the number itself: a 400
    naming the field, not an upstream fault, the register not asked."""
    real = kinds.check_format

    def lenient(kind: kinds.Kind, number: str, register: str | None = None) -> object:
        parsed = real(kind, number, register)
        return parsed._replace(compact=f"{parsed.compact}\x01")  # what slipped through

    monkeypatch.setattr(kinds, "check_format", lenient)
    resp = client.post(URL, json={"number": "5299009TRACE30ACME93"}, headers=AUTH)
    assert resp.status_code == 400, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert set(resp.get_json()["errors"]) == {"number"}
    assert "cannot be sent to the register" in resp.get_json()["detail"]
    assert stats(sim)["calls"] == 0


def test_a_register_requests_cannot_reach_is_a_500_not_a_verdict(sim: str, store) -> None:
    broken = Gleif("htp://127.0.0.1:9/gleif", session=new_session(1))
    app = create_app(app_config(sim, store, REGISTERS={"gleif": broken}))
    resp = app.test_client().post(URL, json={"number": "5299009TRACE30ACME93"}, headers=AUTH)
    assert resp.status_code == 500
    assert resp.mimetype == "application/problem+json"
    assert "could not be built" in resp.get_json()["detail"]
