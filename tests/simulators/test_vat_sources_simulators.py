"""Tests of the HMRC and UID register simulators and of the VIES simulator's REST front end:
their wire formats, knobs and data, in process (the adapters' tests run them over HTTP)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from lxml import etree
from stdnum.ch import uid as ch_uid
from stdnum.gb import vat as gb_vat

from simulators.hmrc import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from simulators.hmrc import create_app as hmrc_app
from simulators.uid import SOAP_PATH
from simulators.uid import create_app as uid_app
from simulators.vies import REST_PREFIX
from simulators.vies import SOAP_PATH as VIES_SOAP
from simulators.vies import create_app as vies_app

REPO = Path(__file__).resolve().parents[2]
ACCEPT = {"Accept": "application/vnd.hmrc.2.0+json"}
LOOKUP = "/organisations/vat/check-vat-number/lookup"
UID_NS = "http://www.uid.admin.ch/xmlns/uid-wse"


# -- HMRC --------------------------------------------------------------------------------------


@pytest.fixture
def hmrc() -> FlaskClient:
    return hmrc_app({}).test_client()


def token(client: FlaskClient) -> str:
    resp = client.post("/oauth/token", data={
        "grant_type": "client_credentials", "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET, "scope": "read:vat"})
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 14400
    return str(body["access_token"])


def test_hmrc_token_endpoint_refuses_wrong_credentials(hmrc: FlaskClient) -> None:
    wrong = hmrc.post("/oauth/token", data={"grant_type": "client_credentials",
                                            "client_id": DEFAULT_CLIENT_ID,
                                            "client_secret": "nope"})
    assert wrong.status_code == 401 and wrong.get_json()["error"] == "invalid_client"
    grant = hmrc.post("/oauth/token", data={"grant_type": "password"})
    assert grant.status_code == 400 and grant.get_json()["error"] == "unsupported_grant_type"


def test_hmrc_lookup_needs_the_v2_accept_header_and_a_token(hmrc: FlaskClient) -> None:
    assert hmrc.get(f"{LOOKUP}/980780684", headers=ACCEPT).status_code == 401
    bearer = {"Authorization": f"Bearer {token(hmrc)}"}
    no_accept = hmrc.get(f"{LOOKUP}/980780684", headers=bearer)
    assert no_accept.status_code == 406
    assert no_accept.get_json()["code"] == "ACCEPT_HEADER_INVALID"
    ok = hmrc.get(f"{LOOKUP}/980780684", headers={**bearer, **ACCEPT}).get_json()
    assert ok["target"]["vatNumber"] == "980780684" and "consultationNumber" not in ok
    assert ok["target"]["address"]["countryCode"] == "GB" and ok["processingDate"]


@pytest.mark.parametrize(("path", "status", "code"), [
    ("980780642", 404, "NOT_FOUND"),
    ("98078068", 400, "INVALID_REQUEST"),
    ("980780684/12", 400, "INVALID_REQUEST"),
    ("980780684/980780642", 403, "INVALID_REQUEST"),
])
def test_hmrc_errors(hmrc: FlaskClient, path: str, status: int, code: str) -> None:
    resp = hmrc.get(f"{LOOKUP}/{path}",
                    headers={**ACCEPT, "Authorization": f"Bearer {token(hmrc)}"})
    assert resp.status_code == status and resp.get_json()["code"] == code
    assert set(resp.get_json()) == {"code", "message"}


def test_hmrc_consultation_number_with_a_requester(hmrc: FlaskClient) -> None:
    body = hmrc.get(f"{LOOKUP}/980780684/553557861",
                    headers={**ACCEPT, "Authorization": f"Bearer {token(hmrc)}"}).get_json()
    assert body["requester"] == "553557861" and len(body["consultationNumber"]) == 9


def test_hmrc_knobs(hmrc: FlaskClient) -> None:
    headers = {**ACCEPT, "Authorization": f"Bearer {token(hmrc)}"}
    assert hmrc.patch("/_sim/config", json={"fail": 429}).status_code == 200
    throttled = hmrc.get(f"{LOOKUP}/980780684", headers=headers)
    assert throttled.status_code == 429
    assert throttled.get_json()["code"] == "MESSAGE_THROTTLED_OUT"
    hmrc.patch("/_sim/config", json={"fail": None, "malformed": True})
    with pytest.raises(json.JSONDecodeError):
        json.loads(hmrc.get(f"{LOOKUP}/980780684", headers=headers).get_data(as_text=True))
    assert hmrc.patch("/_sim/config", json={"fail": 418}).status_code == 400
    assert hmrc.patch("/_sim/config", json={"nope": 1}).status_code == 400


def test_hmrc_demo_vrns_pass_their_check_digits() -> None:
    rows = json.loads((REPO / "simulators/hmrc/traders.json").read_text())["traders"]
    assert rows and all(gb_vat.is_valid(r["vrn"]) for r in rows)


# -- UID register ------------------------------------------------------------------------------


@pytest.fixture
def uid() -> FlaskClient:
    return uid_app({"rate_limit_per_min": 0}).test_client()


def soap(client: FlaskClient, operation: str, inner: str) -> tuple[int, etree._Element]:
    body = (f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>'
            f'<{operation} xmlns="{UID_NS}">{inner}</{operation}></s:Body></s:Envelope>')
    resp = client.post(SOAP_PATH, data=body, content_type="text/xml; charset=utf-8",
                       headers={"SOAPAction": f"{UID_NS}/IPublicServices/{operation}"})
    return resp.status_code, etree.fromstring(resp.data)


def text(root: etree._Element, name: str) -> str | None:
    found = root.find(f".//{{*}}{name}")
    return None if found is None else found.text


@pytest.mark.parametrize(("number", "result"), [
    ("CHE-116.281.704 MWST", "true"), ("CHE116281704", "true"), ("CHE-116.281.727 TVA", "true"),
    ("CHE-116.281.710 MWST", "false"),  # deregistered from VAT
    ("CHE-116.281.733", "false"),  # unknown
])
def test_uid_validate_vat_number(uid: FlaskClient, number: str, result: str) -> None:
    status, root = soap(uid, "ValidateVatNumber", f"<vatNumber>{number}</vatNumber>")
    assert status == 200 and text(root, "ValidateVatNumberResult") == result


def test_uid_get_by_uid(uid: FlaskClient) -> None:
    e97 = "http://www.ech.ch/xmlns/eCH-0097/5"
    inner = (f'<uid><uidOrganisationIdCategorie xmlns="{e97}">CHE</uidOrganisationIdCategorie>'
             f'<uidOrganisationId xmlns="{e97}">116281704</uidOrganisationId></uid>')
    status, root = soap(uid, "GetByUID", inner)
    assert status == 200 and text(root, "organisationName") == "Uhrwerk Manufaktur AG"
    assert text(root, "swissZipCode") == "8001" and text(root, "vatStatus") == "2"
    _, empty = soap(uid, "GetByUID", inner.replace("116281704", "116281733"))
    assert empty.find(".//{*}organisationType") is None


def test_uid_faults(uid: FlaskClient) -> None:
    status, root = soap(uid, "ValidateVatNumber", "<vatNumber>DE136695976</vatNumber>")
    assert status == 500 and text(root, "faultstring") == "Data_validation_failed"
    assert text(root, "errorDetail")
    limited = uid_app({"rate_limit_per_min": 1}).test_client()
    soap(limited, "ValidateVatNumber", "<vatNumber>CHE116281704</vatNumber>")
    status, root = soap(limited, "ValidateVatNumber", "<vatNumber>CHE116281704</vatNumber>")
    assert status == 500 and text(root, "faultstring") == "Request_limit_exceeded"
    assert text(root, "errorDetail") == "Maximum number of 1 requests per 1 minute(s) exceeded"
    bad = uid.post(SOAP_PATH, data=b'<!DOCTYPE x [<!ENTITY e "x">]><x/>',
                   content_type="text/xml")
    assert bad.status_code == 500 and b"Data_validation_failed" in bad.data


def test_uid_serves_its_wsdl_pointing_here(uid: FlaskClient) -> None:
    resp = uid.get(SOAP_PATH + "?wsdl")
    assert resp.status_code == 200
    assert b'location="http://localhost/V5.0/PublicServices.svc"' in resp.data
    assert uid.get(SOAP_PATH).status_code == 405


def test_uid_demo_numbers_pass_their_check_digit() -> None:
    rows = json.loads((REPO / "simulators/uid/organisations.json").read_text())["organisations"]
    assert rows and all(ch_uid.is_valid(r["uid"]) for r in rows)


# -- VIES REST front end -----------------------------------------------------------------------


@pytest.fixture
def vies() -> FlaskClient:
    return vies_app({}).test_client()


def rest(client: FlaskClient, **body: str) -> tuple[int, dict]:
    resp = client.post(REST_PREFIX + "/check-vat-number", json=body)
    return resp.status_code, resp.get_json()


def test_rest_answers_like_soap(vies: FlaskClient) -> None:
    status, body = rest(vies, countryCode="FR", vatNumber="19812345676",
                        requesterMemberStateCode="NL", requesterNumber="820246633B01",
                        traderName="SAS BOULANGERIE MARTIN")
    assert status == 200 and body["valid"] is True and body["name"] == "SAS BOULANGERIE MARTIN"
    assert body["requestIdentifier"].startswith("WAPIAAAA")
    assert body["requestDate"].endswith("Z") and body["traderNameMatch"] == "NOT_PROCESSED"
    _, invalid = rest(vies, countryCode="DE", vatNumber="200")
    assert invalid["valid"] is False and invalid["vatNumber"] == ""


def test_rest_faults_are_error_wrappers(vies: FlaskClient) -> None:
    status, body = rest(vies, countryCode="DE", vatNumber="301")
    assert status == 500
    assert body == {"actionSucceed": False, "errorWrappers": [
        {"error": "MS_UNAVAILABLE", "message": "ms unavailable"}]}
    vies.patch("/_sim/config", json={"fault_http_status": 200})
    status, body = rest(vies, countryCode="DE", vatNumber="600")
    assert status == 200 and body["errorWrappers"][0]["error"] == "MS_MAX_CONCURRENT_REQ"
    status, body = rest(vies, vatNumber="100")
    assert status == 400 and body["errorWrappers"][0]["error"] == "INVALID_INPUT"


def test_front_ends_go_down_one_at_a_time(vies: FlaskClient) -> None:
    vies.patch("/_sim/config", json={"front_ends_down": ["soap"]})
    envelope = (b'<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" '
                b'xmlns:urn="urn:ec.europa.eu:taxud:vies:services:checkVat:types"><soapenv:Body>'
                b"<urn:checkVat><urn:countryCode>DE</urn:countryCode><urn:vatNumber>100"
                b"</urn:vatNumber></urn:checkVat></soapenv:Body></soapenv:Envelope>")
    soap_resp = vies.post(VIES_SOAP, data=envelope, content_type="text/xml")
    assert soap_resp.status_code == 500 and b"SERVICE_UNAVAILABLE" in soap_resp.data
    assert rest(vies, countryCode="DE", vatNumber="100")[1]["valid"] is True
    vies.patch("/_sim/config", json={"front_ends_down": ["rest"]})
    assert rest(vies, countryCode="DE", vatNumber="100")[0] == 503
    assert vies.patch("/_sim/config", json={"front_ends_down": ["ftp"]}).status_code == 400


def test_check_status_reports_states_that_are_down(vies: FlaskClient) -> None:
    vies.patch("/_sim/config", json={"down": ["DE", "EL"]})
    body = vies.get(REST_PREFIX + "/check-status").get_json()
    assert body["vow"] == {"available": True}
    status = {c["countryCode"]: c["availability"] for c in body["countries"]}
    assert status["DE"] == status["EL"] == "Unavailable" and status["FR"] == "Available"
