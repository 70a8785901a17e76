"""Tests of the registers simulator (simulators.registers): shapes, errors, knobs, controls."""

from __future__ import annotations

import base64
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from stdnum import lei
from stdnum.dk import cvr
from stdnum.fr import siren, siret
from stdnum.no import orgnr
from stdnum.pl import nip, regon

from services.registry.formats import cz_ico, gb_company_number, pl_krs
from simulators.registers import DEFAULT_CREDENTIALS, config_from_env, create_app
from simulators.registers.state import ConfigError, merge_config

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "simulators" / "registers" / "data"
CH_AUTH = (DEFAULT_CREDENTIALS["companies_house_api_key"], "")
CVR_AUTH = (DEFAULT_CREDENTIALS["cvr_username"], DEFAULT_CREDENTIALS["cvr_password"])
CVR_PATH = "/cvr/cvr-permanent/virksomhed/_search"


def basic(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


@pytest.fixture
def client() -> FlaskClient:
    return create_app({}).test_client()


def cvr_query(client: FlaskClient, body: object, auth: tuple[str, str] = CVR_AUTH) -> object:
    return client.post(CVR_PATH, json=body, headers=basic(*auth))


# --- demo data -------------------------------------------------------------------------------


def test_demo_numbers_are_valid_numbers() -> None:
    def rows(name: str) -> list[dict]:
        return json.loads((DATA / name).read_text(encoding="utf-8"))

    assert all(lei.is_valid(r["lei"]) for r in rows("gleif.json"))
    for unit in rows("recherche_entreprises.json"):
        assert siren.is_valid(unit["siren"])
        assert all(siret.is_valid(e["siret"]) and e["siret"].startswith(unit["siren"])
                   for e in unit["establishments"])
    assert all(orgnr.is_valid(r["orgnr"]) for r in rows("brreg.json"))
    assert all(gb_company_number.is_valid(r["company_number"])
               for r in rows("companies_house.json"))
    assert all(cvr.is_valid(r["cvr"]) for r in rows("cvr.json"))
    assert all(cz_ico.validate(r["ico"]) == r["ico"] for r in rows("ares.json"))
    for r in rows("krs.json"):
        assert pl_krs.validate(r["krs"]) == r["krs"] and r["register"] in ("P", "S")
        assert nip.is_valid(r["nip"]) if "nip" in r else True
        assert regon.is_valid(r["regon"][:9]) if "regon" in r else True


# --- GLEIF -------------------------------------------------------------------------------------


def test_gleif_record_shape(client: FlaskClient) -> None:
    resp = client.get("/gleif/api/v1/lei-records/5299009TRACE30NORD32")
    assert resp.status_code == 200 and resp.mimetype == "application/vnd.api+json"
    data = json.loads(resp.data)["data"]
    assert (data["type"], data["id"]) == ("lei-records", "5299009TRACE30NORD32")
    attributes = data["attributes"]
    assert attributes["entity"]["legalName"] == {"name": "Nordlicht Trading AS", "language": "no"}
    assert attributes["entity"]["status"] == "ACTIVE"
    assert attributes["registration"]["status"] == "LAPSED"
    assert attributes["entity"]["legalAddress"]["addressLines"] == ["Bryggen 5"]
    assert data["links"]["self"].endswith("/lei-records/5299009TRACE30NORD32")


def test_gleif_unknown_is_404_jsonapi(client: FlaskClient) -> None:
    resp = client.get("/gleif/api/v1/lei-records/5299009TRACE30UNKN10")
    assert resp.status_code == 404
    assert json.loads(resp.data) == {"errors": [{"status": "404", "title": "Not Found"}]}


# --- Recherche d'entreprises -------------------------------------------------------------------


def test_recherche_by_siren(client: FlaskClient) -> None:
    body = client.get("/recherche-entreprises/search?q=798765434").get_json()
    assert body["total_results"] == 1 and body["page"] == 1
    unit = body["results"][0]
    assert (unit["siren"], unit["etat_administratif"], unit["date_fermeture"]) == (
        "798765434", "C", "2025-05-22")
    assert unit["siege"]["etat_administratif"] == "F"
    assert unit["matching_etablissements"] == []


def test_recherche_by_siret_fills_matching_establishments(client: FlaskClient) -> None:
    body = client.get("/recherche-entreprises/search?q=81234567600025").get_json()
    matching = body["results"][0]["matching_etablissements"]
    assert [(e["siret"], e["etat_administratif"]) for e in matching] == [("81234567600025", "F")]
    assert client.get("/recherche-entreprises/search?q=81234567600033").get_json()[
        "total_results"] == 0


def test_recherche_by_name_and_pages(client: FlaskClient) -> None:
    body = client.get("/recherche-entreprises/search?q=dupont&per_page=1&page=2").get_json()
    assert body["total_results"] == 2 and body["total_pages"] == 2
    assert len(body["results"]) == 1


@pytest.mark.parametrize("query", ["", "?q=", "?q=x&per_page=30", "?q=x&page=zero"])
def test_recherche_bad_query_is_400(client: FlaskClient, query: str) -> None:
    resp = client.get("/recherche-entreprises/search" + query)
    assert resp.status_code == 400 and "erreur" in resp.get_json()


# --- Brønnøysund ------------------------------------------------------------------------------


def test_brreg_shapes(client: FlaskClient) -> None:
    active = client.get("/brreg/enhetsregisteret/api/enheter/912345602").get_json()
    assert active["navn"] == "NORDISK FISK AS"
    assert active["organisasjonsform"]["kode"] == "AS"
    assert (active["konkurs"], active["underAvvikling"]) == (False, False)
    assert active["forretningsadresse"]["adresse"] == ["Bryggen 5"]
    bankrupt = client.get("/brreg/enhetsregisteret/api/enheter/912345610").get_json()
    assert bankrupt["konkurs"] is True and bankrupt["konkursdato"] == "2024-09-02"
    deleted = client.get("/brreg/enhetsregisteret/api/enheter/912345645").get_json()
    assert deleted["slettedato"] == "2024-11-26" and "konkurs" not in deleted


@pytest.mark.parametrize(("orgnr", "status"),
                         [("912345653", 410), ("912345688", 404), ("12345", 400)])
def test_brreg_errors(client: FlaskClient, orgnr: str, status: int) -> None:
    resp = client.get(f"/brreg/enhetsregisteret/api/enheter/{orgnr}")
    assert resp.status_code == status
    assert resp.get_json()["status"] == status


# --- Companies House --------------------------------------------------------------------------


def test_companies_house_profile(client: FlaskClient) -> None:
    resp = client.get("/companies-house/company/SC123456", headers=basic(*CH_AUTH))
    profile = resp.get_json()
    assert (profile["company_status"], profile["date_of_cessation"]) == ("dissolved",
                                                                         "2023-02-14")
    assert profile["links"]["self"] == "/company/SC123456"
    llp = client.get("/companies-house/company/OC300001", headers=basic(*CH_AUTH)).get_json()
    assert llp["company_status_detail"] == "active-proposal-to-strike-off"


@pytest.mark.parametrize("headers", [{}, basic("wrong", ""), basic(CH_AUTH[0], "x")])
def test_companies_house_needs_the_key_as_user(client: FlaskClient,
                                               headers: dict[str, str]) -> None:
    resp = client.get("/companies-house/company/01234567", headers=headers)
    assert resp.status_code == 401
    assert resp.get_json() == {"error": "Invalid Authorization", "type": "ch:service"}


def test_companies_house_unknown_is_404(client: FlaskClient) -> None:
    resp = client.get("/companies-house/company/09999999", headers=basic(*CH_AUTH))
    assert resp.status_code == 404
    assert resp.get_json()["errors"][0]["error"] == "company-profile-not-found"


# --- CVR -------------------------------------------------------------------------------------


def test_cvr_search(client: FlaskClient) -> None:
    body = cvr_query(client, {"query": {"term": {"Vrvirksomhed.cvrNummer": 37345679}}}).get_json()
    assert body["hits"]["total"] == 1
    company = body["hits"]["hits"][0]["_source"]["Vrvirksomhed"]
    assert company["cvrNummer"] == 37345679
    assert company["virksomhedMetadata"]["sammensatStatus"] == "OPLØSTEFTERKONKURS"
    assert company["livsforloeb"][-1]["periode"]["gyldigTil"] == "2022-06-30"


def test_cvr_source_filter_bool_match_and_no_hit(client: FlaskClient) -> None:
    body = cvr_query(client, {
        "query": {"bool": {"must": [{"match": {"Vrvirksomhed.cvrNummer": "35123458"}}]}},
        "_source": ["Vrvirksomhed.virksomhedMetadata.sammensatStatus"],
    }).get_json()
    assert body["hits"]["hits"][0]["_source"] == {
        "Vrvirksomhed": {"virksomhedMetadata": {"sammensatStatus": "NORMAL"}}
    }
    none = cvr_query(client, {"query": {"term": {"Vrvirksomhed.cvrNummer": 39567806}}})
    assert none.get_json()["hits"] == {"total": 0, "max_score": None, "hits": []}


def test_cvr_errors(client: FlaskClient) -> None:
    unauthorised = cvr_query(client, {"query": {}}, auth=("x", "y"))
    assert unauthorised.status_code == 401
    assert unauthorised.get_json()["error"]["type"] == "security_exception"
    assert unauthorised.headers["WWW-Authenticate"].startswith("Basic")
    assert cvr_query(client, {"query": {"match_all": {}}}).status_code == 400


# --- ARES -------------------------------------------------------------------------------------

ARES_PATH = "/ares/ekonomicke-subjekty-v-be/rest/ekonomicke-subjekty/"


def test_ares_shapes(client: FlaskClient) -> None:
    active = client.get(ARES_PATH + "27300307").get_json()
    assert (active["ico"], active["obchodniJmeno"], active["pravniForma"]) == (
        "27300307", "NOVÁ TECHNIKA s.r.o.", "112")
    assert active["sidlo"]["textovaAdresa"] == "Na Příkopě 859/22, Nové Město, 11000 Praha"
    assert active["sidlo"]["psc"] == 11000 and "datumZaniku" not in active
    states = active["seznamRegistraci"]
    assert (states["stavZdrojeRos"], states["stavZdrojeVr"], states["stavZdrojeRzp"]) == (
        "AKTIVNI", "AKTIVNI", "NEEXISTUJICI")
    assert active["primarniZdroj"] == "ros" and active["dic"] == "CZ27300307"
    dissolved = client.get(ARES_PATH + "27300315").get_json()
    assert dissolved["datumZaniku"] == "2023-06-30"
    assert dissolved["seznamRegistraci"]["stavZdrojeRos"] == "ZANIKLY"


@pytest.mark.parametrize(("ico", "status", "code"),
                         [("27300331", 404, "NENALEZENO"), ("2730030", 400, "CHYBA_VSTUPU")])
def test_ares_errors(client: FlaskClient, ico: str, status: int, code: str) -> None:
    resp = client.get(ARES_PATH + ico)
    assert resp.status_code == status and resp.get_json()["kod"] == code


# --- KRS --------------------------------------------------------------------------------------

KRS_PATH = "/krs/api/krs/"


def test_krs_current_extract(client: FlaskClient) -> None:
    odpis = client.get(KRS_PATH + "OdpisAktualny/0000730030?rejestr=P&format=json").get_json()[
        "odpis"]
    assert odpis["rodzaj"] == "Aktualny"
    assert (odpis["naglowekA"]["rejestr"], odpis["naglowekA"]["numerKRS"]) == ("RejP",
                                                                                "0000730030")
    entity = odpis["dane"]["dzial1"]["danePodmiotu"]
    assert entity["formaPrawna"] == "SPÓŁKA Z OGRANICZONĄ ODPOWIEDZIALNOŚCIĄ"
    assert entity["identyfikatory"] == {"nip": "5273030008", "regon": "73003001300000"}
    assert odpis["dane"]["dzial1"]["siedzibaIAdres"]["adres"]["nrLokalu"] == "2"
    assert odpis["dane"]["dzial6"] == {}
    liquidation = client.get(KRS_PATH + "OdpisAktualny/0000730049?rejestr=P&format=json")
    assert liquidation.get_json()["odpis"]["dane"]["dzial6"]["likwidacja"]


def test_krs_deleted_entity(client: FlaskClient) -> None:
    current = client.get(KRS_PATH + "OdpisAktualny/0000730065?rejestr=P&format=json")
    assert current.status_code == 204 and current.data == b""
    header = client.get(KRS_PATH + "OdpisPelny/0000730065?rejestr=P&format=json").get_json()[
        "odpis"]["naglowekP"]
    assert header["stanPozycji"] == 2
    assert header["wpis"][-1]["opis"] == "WYKREŚLENIE Z KRAJOWEGO REJESTRU SĄDOWEGO"
    assert header["wpis"][-1]["dataWpisu"] == "12.08.2022"


@pytest.mark.parametrize(
    ("path", "status"),
    [("OdpisAktualny/0000730073?rejestr=P&format=json", 404),  # a foundation: register S
     ("OdpisAktualny/0000730073?rejestr=S&format=json", 200),
     ("OdpisAktualny/0000730081?rejestr=P&format=json", 404),
     ("OdpisAktualny/730030?rejestr=P&format=json", 400),
     ("OdpisAktualny/0000730030?rejestr=X&format=json", 400),
     ("OdpisAktualny/0000730030?rejestr=P&format=pdf", 400)],
)
def test_krs_registers_and_errors(client: FlaskClient, path: str, status: int) -> None:
    resp = client.get(KRS_PATH + path)
    assert resp.status_code == status
    if status != 200:
        assert resp.mimetype == "application/problem+json"
        assert resp.get_json()["status"] == status


# --- knobs and controls ------------------------------------------------------------------------


def test_fail_knob(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"fail": 503})
    resp = client.get("/gleif/api/v1/lei-records/5299009TRACE30ACME93")
    assert resp.status_code == 503 and resp.mimetype == "text/html"
    client.patch("/_sim/config", json={"fail": 500})
    resp = client.get("/brreg/enhetsregisteret/api/enheter/912345602")
    assert resp.status_code == 500 and resp.get_json()["status"] == 500
    client.patch("/_sim/config", json={"fail": None})
    assert client.get("/brreg/enhetsregisteret/api/enheter/912345602").status_code == 200


def test_rate_limit_knob_answers_429_with_retry_after(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"rate_limit": 2})
    codes = [client.get("/gleif/api/v1/lei-records/5299009TRACE30ACME93").status_code
             for _ in range(3)]
    assert codes == [200, 200, 429]
    resp = client.get("/gleif/api/v1/lei-records/5299009TRACE30ACME93")
    assert resp.headers["Retry-After"] == "1"
    # each register has its own window
    assert client.get("/brreg/enhetsregisteret/api/enheter/912345602").status_code == 200
    client.patch("/_sim/config", json={"sources": {"gleif": {"retry_after_s": 42}}})
    assert client.get("/gleif/api/v1/lei-records/x").headers["Retry-After"] == "42"


def test_rate_limit_window_frees_after_a_second(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"rate_limit": 1})
    assert client.get("/gleif/api/v1/lei-records/x").status_code == 404
    assert client.get("/gleif/api/v1/lei-records/x").status_code == 429
    time.sleep(1.05)
    assert client.get("/gleif/api/v1/lei-records/x").status_code == 404


def test_per_source_overrides(client: FlaskClient) -> None:
    config = client.patch("/_sim/config", json={
        "latency_ms": 0, "sources": {"brreg": {"fail": 503, "latency_ms": 120}},
    }).get_json()
    assert config["sources"] == {"brreg": {"fail": 503, "latency_ms": 120}}
    started = time.monotonic()
    assert client.get("/brreg/enhetsregisteret/api/enheter/912345602").status_code == 503
    assert time.monotonic() - started >= 0.12
    assert client.get("/gleif/api/v1/lei-records/5299009TRACE30ACME93").status_code == 200
    assert client.get(ARES_PATH + "27300307").status_code == 200
    config = client.patch("/_sim/config", json={"sources": {"brreg": {"fail": None}}}).get_json()
    assert config["sources"] == {"brreg": {"latency_ms": 120}}
    assert client.patch("/_sim/config", json={"sources": None}).get_json()["sources"] == {}


def test_unknown_paths_under_a_prefix_count_for_the_register(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"sources": {"cvr": {"fail": 503}}})
    assert client.get("/cvr/anything").status_code == 503
    client.patch("/_sim/config", json={"sources": None})
    assert client.get("/cvr/anything").status_code == 404
    stats = client.get("/_sim/stats").get_json()
    assert stats["by_status"]["cvr"] == {"503": 1, "404": 1}


@pytest.mark.parametrize(
    "patch",
    [{"colour": 1}, {"fail": 404}, {"fail": True}, {"latency_ms": -1}, {"rate_limit": 1.5},
     {"retry_after_s": "soon"}, {"sources": {"opencorporates": {}}},
     {"sources": {"gleif": {"colour": 1}}}, {"sources": []}],
)
def test_bad_config_is_400(client: FlaskClient, patch: dict) -> None:
    resp = client.patch("/_sim/config", json=patch)
    assert resp.status_code == 400 and resp.get_json()["error"]


def test_config_needs_an_object(client: FlaskClient) -> None:
    assert client.patch("/_sim/config", data="x", content_type="text/plain").status_code == 400


def test_stats_and_reset(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"sources": {"cvr": {"rate_limit": 0}}})
    client.get("/gleif/api/v1/lei-records/5299009TRACE30ACME93")
    client.get("/companies-house/company/01234567")
    cvr_query(client, {"query": {"term": {"Vrvirksomhed.cvrNummer": 1}}})
    stats = client.get("/_sim/stats").get_json()
    assert stats["calls"] == 3
    assert stats["by_source"] == {"gleif": 1, "companies_house": 1, "cvr": 1}
    assert stats["by_status"] == {"gleif": {"200": 1}, "companies_house": {"401": 1},
                                  "cvr": {"429": 1}}
    assert stats["throttled"] == {"cvr": 1} and stats["failed"] == {}
    assert client.post("/_sim/reset").get_json()["calls"] == 0
    assert client.get("/_sim/health").get_json() == {"status": "ok"}
    assert client.get("/_sim/config").get_json()["sources"] == {"cvr": {"rate_limit": 0}}


def test_merge_config_defaults_and_errors() -> None:
    assert merge_config({})["fail"] is None
    assert merge_config({"fail": None}, merge_config({"fail": 500}))["fail"] is None
    with pytest.raises(ConfigError):
        merge_config({"rate_limit": -1})


def test_environment_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"TRACE30_SIM_REGISTERS_LATENCY_MS": "5", "TRACE30_SIM_REGISTERS_FAIL": "503",
           "TRACE30_SIM_REGISTERS_RATE_LIMIT": "3",
           "TRACE30_SIM_REGISTERS_COMPANIES_HOUSE_API_KEY": "k"}
    assert config_from_env(env) == {"latency_ms": 5.0, "fail": 503, "rate_limit": 3,
                                    "companies_house_api_key": "k"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    app = create_app()
    assert app.test_client().get("/_sim/config").get_json()["fail"] == 503
    monkeypatch.delenv("TRACE30_SIM_REGISTERS_FAIL")
    client = create_app().test_client()
    resp = client.get("/companies-house/company/01234567", headers=basic("k", ""))
    assert resp.status_code == 200
    with pytest.raises(ConfigError):
        create_app({"fail": 418})


def test_runs_as_a_process_and_stops_on_sigterm() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.registers", "--host", "127.0.0.1", "--port", "0",
         "--quiet", "--rate-limit", "5"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("registers-simulator listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        assert requests.get(base + "/_sim/health", timeout=5).json() == {"status": "ok"}
        assert requests.get(base + "/_sim/config", timeout=5).json()["rate_limit"] == 5
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout:
            proc.stdout.close()
