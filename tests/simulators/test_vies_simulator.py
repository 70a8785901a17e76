"""Tests of the VIES SOAP simulator (simulators.vies) and of trace30's VIES WSDL."""

from __future__ import annotations

import json
import re
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from flask import Flask
from flask.testing import FlaskClient
from lxml import etree
from stdnum.eu import vat as eu_vat

from simulators.vies import config_from_env, create_app, parse_ms_limits
from simulators.vies.register import TEST_FAULTS
from simulators.vies.state import ConfigError

REPO = Path(__file__).resolve().parents[2]
WSDL_FILE = REPO / "services" / "vat" / "wsdl" / "checkVatService.wsdl"
TRADERS_FILE = REPO / "simulators" / "vies" / "traders.json"
SOAP_PATH = "/taxation_customs/vies/services/checkVatService"
WSDL_PATH = "/taxation_customs/vies/checkVatService.wsdl"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
TYPES = "urn:ec.europa.eu:taxud:vies:services:checkVat:types"
BINDING = "{urn:ec.europa.eu:taxud:vies:services:checkVat}checkVatBinding"
REQUEST_DATE = re.compile(r"\d{4}-\d{2}-\d{2}[+-]\d{2}:\d{2}")
REQUEST_IDENTIFIER = re.compile(r"WAPIAAAA[0-9A-Za-z]{8}")


# --- helpers -------------------------------------------------------------------------------


def envelope(operation: str, **fields: str) -> bytes:
    """Return a SOAP 1.1 request for ``operation`` with ``fields`` (in the given order)."""
    root = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soapenv": SOAP_ENV, "urn": TYPES})
    etree.SubElement(root, f"{{{SOAP_ENV}}}Header")
    body = etree.SubElement(root, f"{{{SOAP_ENV}}}Body")
    payload = etree.SubElement(body, f"{{{TYPES}}}{operation}")
    for name, value in fields.items():
        etree.SubElement(payload, f"{{{TYPES}}}{name}").text = value
    return bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def post(client: FlaskClient, body: bytes | str) -> Any:
    return client.post(SOAP_PATH, data=body, content_type="text/xml; charset=utf-8")


def answer(response: Any) -> dict[str, str]:
    """Return the payload of a SOAP answer as {local name: text}; fails on a fault."""
    assert response.status_code == 200, response.data
    assert response.content_type.startswith("text/xml")
    root = etree.fromstring(response.data)
    assert root.tag == f"{{{SOAP_ENV}}}Envelope"
    assert root.prefix == "env"
    assert root[0].tag == f"{{{SOAP_ENV}}}Header"
    payload = root.find(f"{{{SOAP_ENV}}}Body")[0]
    assert payload.prefix == "ns2" and etree.QName(payload).namespace == TYPES
    return {etree.QName(child).localname: child.text or "" for child in payload}


def fault(response: Any, status: int = 500) -> tuple[str | None, str]:
    """Return (faultcode, faultstring) of a SOAP fault answer."""
    assert response.status_code == status, response.data
    root = etree.fromstring(response.data)
    node = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert node is not None, response.data
    return node.findtext("faultcode"), node.findtext("faultstring") or ""


def check_vat(client: FlaskClient, country: str, number: str) -> Any:
    return post(client, envelope("checkVat", countryCode=country, vatNumber=number))


@pytest.fixture()
def app() -> Flask:
    return create_app({})


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- VIES test numbers and simulator extensions -------------------------------------------


@pytest.mark.parametrize("country", ["DE", "EL", "XI"])
def test_100_is_valid_for_any_country(client: FlaskClient, country: str) -> None:
    data = answer(check_vat(client, country, "100"))
    assert data["countryCode"] == country
    assert data["vatNumber"] == "100"
    assert data["valid"] == "true"
    assert data["name"] == "John Doe"
    assert data["address"] == "123 Main St, Anytown, UK"
    assert REQUEST_DATE.fullmatch(data["requestDate"])
    assert list(data) == ["countryCode", "vatNumber", "requestDate", "valid", "name", "address"]


def test_200_is_invalid(client: FlaskClient) -> None:
    data = answer(check_vat(client, "FR", "200"))
    assert data["valid"] == "false"
    assert data["name"] == "---"
    assert data["address"] == "---"


@pytest.mark.parametrize(("number", "code"), sorted(TEST_FAULTS.items()))
def test_fault_numbers(client: FlaskClient, number: str, code: str) -> None:
    assert fault(check_vat(client, "DE", number)) == ("env:Server", code)


def test_fault_numbers_cover_the_vies_test_service() -> None:
    assert TEST_FAULTS == {
        "201": "INVALID_INPUT",
        "202": "INVALID_REQUESTER_INFO",
        "300": "SERVICE_UNAVAILABLE",
        "301": "MS_UNAVAILABLE",
        "302": "TIMEOUT",
        "400": "VAT_BLOCKED",
        "401": "IP_BLOCKED",
        "500": "GLOBAL_MAX_CONCURRENT_REQ",
        "501": "GLOBAL_MAX_CONCURRENT_REQ_TIME",
        "600": "MS_MAX_CONCURRENT_REQ",
        "601": "MS_MAX_CONCURRENT_REQ_TIME",
    }


def test_fault_http_status_200() -> None:
    client = create_app({"fault_http_status": 200}).test_client()
    assert fault(check_vat(client, "DE", "301"), status=200) == ("env:Server", "MS_UNAVAILABLE")


def test_700_answers_unparsable_xml(client: FlaskClient) -> None:
    response = check_vat(client, "DE", "700")
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    with pytest.raises(etree.XMLSyntaxError):
        etree.fromstring(response.data)


def test_701_hangs_for_slow_seconds_then_answers_valid() -> None:
    client = create_app({"slow_seconds": 0.2}).test_client()
    started = time.monotonic()
    data = answer(check_vat(client, "DE", "701"))
    assert time.monotonic() - started >= 0.2
    assert data["valid"] == "true"
    assert data["name"] == "John Doe"


def test_702_answers_a_gateway_error_page(client: FlaskClient) -> None:
    response = check_vat(client, "DE", "702")
    assert response.status_code == 503
    assert response.content_type.startswith("text/html")
    assert b"503" in response.data


def test_703_fault_without_faultcode(client: FlaskClient) -> None:
    assert fault(check_vat(client, "DE", "703")) == (None, "MS_UNAVAILABLE")


def test_704_legacy_server_busy(client: FlaskClient) -> None:
    assert fault(check_vat(client, "DE", "704")) == ("env:Server", "SERVER_BUSY")


# --- demo register --------------------------------------------------------------------------


def test_demo_traders_have_checksum_valid_numbers_across_states() -> None:
    traders = json.loads(TRADERS_FILE.read_text(encoding="utf-8"))["traders"]
    assert len(traders) >= 20
    for trader in traders:
        assert eu_vat.is_valid(trader["vat"]), trader["vat"]
    countries = {trader["vat"][:2] for trader in traders}
    required = {"DE", "FR", "NL", "IT", "ES", "AT", "BE", "PL", "EL", "XI", "LU", "IE", "DK", "SE"}
    assert required <= countries


def test_demo_trader_valid_with_name_and_address(client: FlaskClient) -> None:
    data = answer(check_vat(client, "LU", "26375245"))
    assert data["valid"] == "true"
    assert data["vatNumber"] == "26375245"
    assert data["name"] == "AMAZON EUROPE CORE S.A R.L."
    assert data["address"] == "38, AVENUE JOHN F. KENNEDY L-1855  LUXEMBOURG"


def test_demo_trader_multiline_address(client: FlaskClient) -> None:
    data = answer(check_vat(client, "FR", "29528163777"))
    assert data["name"] == "SA DANONE"
    assert data["address"] == "17 BD HAUSSMANN\n75009 PARIS"


def test_german_trader_discloses_nothing(client: FlaskClient) -> None:
    data = answer(check_vat(client, "DE", "136695976"))
    assert data["valid"] == "true"
    assert (data["name"], data["address"]) == ("---", "---")


def test_unknown_number_is_invalid_with_empty_fields(client: FlaskClient) -> None:
    data = answer(check_vat(client, "FR", "12345678901"))
    assert data["valid"] == "false"
    assert (data["vatNumber"], data["name"], data["address"]) == ("", "", "")


def test_deregistered_trader_is_invalid(client: FlaskClient) -> None:
    assert answer(check_vat(client, "DE", "129273398"))["valid"] == "false"


@pytest.mark.parametrize(
    ("country", "number"),
    [("GB", "333289454"), ("DE", "12345678901234"), ("de", "136695976"), ("DE", "")],
)
def test_bad_input_is_invalid_input(client: FlaskClient, country: str, number: str) -> None:
    assert fault(check_vat(client, country, number)) == ("env:Server", "INVALID_INPUT")


# --- checkVatApprox -------------------------------------------------------------------------


def approx(client: FlaskClient, **fields: str) -> dict[str, str]:
    return answer(post(client, envelope("checkVatApprox", **fields)))


def test_approx_match_codes_valid_invalid_and_omitted(client: FlaskClient) -> None:
    data = approx(
        client,
        countryCode="AT",
        vatNumber="U47554141",
        traderName="alpenblick  demo handels gmbh",
        traderCompanyType="AT-3",
        traderStreet="Kärntner Strasse 1",
        traderPostcode="1070",
    )
    assert data["valid"] == "true"
    assert data["traderName"] == "Alpenblick Demo Handels GmbH"
    assert data["traderCompanyType"] == "AT-3"
    assert data["traderStreet"] == "Mariahilfer Strasse 12"
    assert data["traderPostcode"] == "1070"
    assert data["traderCity"] == "Wien"
    assert data["traderAddress"] == "Mariahilfer Strasse 12\nAT-1070 Wien"
    assert data["traderNameMatch"] == "1"
    assert data["traderCompanyTypeMatch"] == "1"
    assert data["traderStreetMatch"] == "2"
    assert data["traderPostcodeMatch"] == "1"
    assert "traderCityMatch" not in data
    assert data["requestIdentifier"] == ""
    assert list(data)[-1] == "requestIdentifier"


def test_approx_german_trader_is_not_processed(client: FlaskClient) -> None:
    data = approx(
        client, countryCode="DE", vatNumber="136695976", traderName="Any GmbH", traderCity="Berlin"
    )
    assert data["valid"] == "true"
    assert data["traderName"] == "---"
    assert (data["traderNameMatch"], data["traderCityMatch"]) == ("3", "3")
    assert "traderStreetMatch" not in data


def test_approx_test_number_100(client: FlaskClient) -> None:
    data = approx(client, countryCode="FR", vatNumber="100", traderName="Someone", traderCity="X")
    assert data["valid"] == "true"
    assert data["traderName"] == "John Doe"
    assert (data["traderNameMatch"], data["traderCityMatch"]) == ("1", "1")


def test_approx_request_identifier_with_requester(client: FlaskClient) -> None:
    first = approx(
        client,
        countryCode="ES",
        vatNumber="B83891812",
        requesterCountryCode="DE",
        requesterVatNumber="136695976",
    )
    second = approx(
        client,
        countryCode="ES",
        vatNumber="B83891812",
        requesterCountryCode="DE",
        requesterVatNumber="136695976",
    )
    assert REQUEST_IDENTIFIER.fullmatch(first["requestIdentifier"])
    assert first["requestIdentifier"] != second["requestIdentifier"]
    assert not any(key.endswith("Match") for key in first)


def test_approx_request_identifier_empty_without_requester(client: FlaskClient) -> None:
    assert approx(client, countryCode="ES", vatNumber="B83891812")["requestIdentifier"] == ""
    only_country = approx(
        client, countryCode="ES", vatNumber="B83891812", requesterCountryCode="DE"
    )
    assert only_country["requestIdentifier"] == ""


def test_approx_bad_requester(client: FlaskClient) -> None:
    body = envelope(
        "checkVatApprox",
        countryCode="ES",
        vatNumber="B83891812",
        requesterCountryCode="GB",
        requesterVatNumber="333289454",
    )
    assert fault(post(client, body)) == ("env:Server", "INVALID_REQUESTER_INFO")


# --- concurrency limits ---------------------------------------------------------------------


def run_parallel(app: Flask, calls: list[tuple[str, str]]) -> list[str]:
    """Send the checkVat ``calls`` at once, each from its own thread; return the outcomes."""
    barrier = threading.Barrier(len(calls))
    outcomes: list[str] = [""] * len(calls)

    def call(index: int, country: str, number: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = check_vat(client, country, number)
        if response.status_code == 200:
            outcomes[index] = "valid=" + answer(response)["valid"]
        else:
            outcomes[index] = fault(response)[1]

    threads = [
        threading.Thread(target=call, args=(index, country, number))
        for index, (country, number) in enumerate(calls)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return outcomes


def test_member_state_concurrency_limit() -> None:
    app = create_app({"latency_ms": 200, "ms_limits": {"DE": 2}})
    outcomes = run_parallel(app, [("DE", "136695976")] * 6)
    rejected = outcomes.count("MS_MAX_CONCURRENT_REQ")
    assert rejected >= 1
    assert outcomes.count("valid=true") >= 2
    assert rejected + outcomes.count("valid=true") == 6
    stats = app.test_client().get("/_sim/stats").get_json()
    assert 1 <= stats["max_in_flight"]["DE"] <= 2
    assert stats["faults"]["MS_MAX_CONCURRENT_REQ"] == rejected
    assert stats["by_country"]["DE"] == 6
    assert stats["in_flight"] == {}


def test_global_concurrency_limit() -> None:
    app = create_app({"latency_ms": 200, "global_limit": 1})
    outcomes = run_parallel(app, [("DE", "100"), ("FR", "100"), ("IT", "100")])
    assert outcomes.count("GLOBAL_MAX_CONCURRENT_REQ") >= 1
    assert app.test_client().get("/_sim/stats").get_json()["max_in_flight_global"] == 1


# --- knobs at run time ----------------------------------------------------------------------


def test_overrides_via_patch_config(client: FlaskClient) -> None:
    response = client.patch(
        "/_sim/config", json={"overrides": {"DE136695976": {"fault": "MS_UNAVAILABLE"}}}
    )
    assert response.status_code == 200
    assert response.get_json()["overrides"] == {"DE136695976": {"fault": "MS_UNAVAILABLE"}}
    assert fault(check_vat(client, "DE", "136695976"))[1] == "MS_UNAVAILABLE"

    client.patch(
        "/_sim/config",
        json={
            "overrides": {"DE136695976": {"valid": True, "name": "Neue GmbH", "address": "Berlin"}}
        },
    )
    data = answer(check_vat(client, "DE", "136695976"))
    assert (data["valid"], data["name"], data["address"]) == ("true", "Neue GmbH", "Berlin")

    client.patch("/_sim/config", json={"overrides": {"DE136695976": None}})
    assert answer(check_vat(client, "DE", "136695976"))["name"] == "---"
    assert client.get("/_sim/config").get_json()["overrides"] == {}


def test_down_via_patch_config(client: FlaskClient) -> None:
    response = client.patch("/_sim/config", json={"down": ["fr"]})
    assert response.get_json()["down"] == ["FR"]
    assert fault(check_vat(client, "FR", "29528163777"))[1] == "MS_UNAVAILABLE"
    assert answer(check_vat(client, "DE", "136695976"))["valid"] == "true"
    client.patch("/_sim/config", json={"down": []})
    assert answer(check_vat(client, "FR", "29528163777"))["valid"] == "true"


def test_patch_config_merges_and_rejects_bad_values(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"ms_limits": {"DE": 2}})
    config = client.patch("/_sim/config", json={"ms_limits": {"fr": 5}, "latency_ms": 5}).get_json()
    assert config["ms_limits"] == {"DE": 2, "FR": 5}
    assert config["latency_ms"] == 5
    assert config["fault_http_status"] == 500
    for bad in (
        {"no_such_knob": 1},
        {"fault_http_status": 404},
        {"ms_limits": {"DE": 0}},
        {"latency_ms": -1},
        {"overrides": {"DE1": {"colour": "red"}}},
    ):
        response = client.patch("/_sim/config", json=bad)
        assert response.status_code == 400, bad
        assert "error" in response.get_json()
    assert (
        client.patch("/_sim/config", data="[1]", content_type="application/json").status_code == 400
    )
    assert client.get("/_sim/config").get_json()["ms_limits"] == {"DE": 2, "FR": 5}


def test_create_app_rejects_bad_config() -> None:
    with pytest.raises(ConfigError):
        create_app({"fault_http_status": 302})


def test_config_from_env() -> None:
    env = {"TRACE30_SIM_VIES_LATENCY_MS": "150", "TRACE30_SIM_VIES_MS_LIMITS": "DE=2, fr=5"}
    assert config_from_env(env) == {"latency_ms": 150.0, "ms_limits": {"DE": 2, "FR": 5}}
    assert config_from_env({}) == {}
    with pytest.raises(ValueError):
        parse_ms_limits("DE")


# --- hostile and malformed requests ---------------------------------------------------------

BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:urn="urn:ec.europa.eu:taxud:vies:services:checkVat:types">
<soapenv:Body><urn:checkVat><urn:countryCode>DE</urn:countryCode>
<urn:vatNumber>&lol2;</urn:vatNumber></urn:checkVat></soapenv:Body></soapenv:Envelope>"""

EXTERNAL_ENTITY = b"""<?xml version="1.0"?>
<!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"
  xmlns:urn="urn:ec.europa.eu:taxud:vies:services:checkVat:types">
<soapenv:Body><urn:checkVat><urn:countryCode>DE</urn:countryCode>
<urn:vatNumber>&xxe;</urn:vatNumber></urn:checkVat></soapenv:Body></soapenv:Envelope>"""


@pytest.mark.parametrize(
    "body",
    [
        b"<soapenv:Envelope",
        b"",
        b"not xml at all",
        BILLION_LAUGHS,
        EXTERNAL_ENTITY,
        b"<Envelope><Body/></Envelope>",
        envelope("checkVatSomething", countryCode="DE", vatNumber="100"),
        envelope("checkVat", vatNumber="100"),
        envelope("checkVat", countryCode="DE", vatNumber="100", extra="1"),
    ],
    ids=[
        "truncated",
        "empty",
        "text",
        "billion-laughs",
        "external-entity",
        "not-soap",
        "unknown-operation",
        "no-country",
        "unknown-field",
    ],
)
def test_malformed_request_is_invalid_input(client: FlaskClient, body: bytes) -> None:
    response = post(client, body)
    assert fault(response) == ("env:Server", "INVALID_INPUT")
    assert b"root:" not in response.data


# --- WSDL -----------------------------------------------------------------------------------


def test_project_wsdl_loads_in_zeep() -> None:
    client = zeep.Client(str(WSDL_FILE))
    service = next(iter(client.wsdl.services.values()))
    assert service.name == "checkVatService"
    port = service.ports["checkVatPort"]
    assert port.binding_options["address"] == (
        "https://ec.europa.eu/taxation_customs/vies/services/checkVatService"
    )
    assert set(port.binding._operations) == {"checkVat", "checkVatApprox"}


@pytest.mark.parametrize("path", [WSDL_PATH, SOAP_PATH + "?wsdl", SOAP_PATH + "?WSDL"])
def test_wsdl_served_with_own_address(client: FlaskClient, path: str) -> None:
    response = client.get(path, base_url="http://sim.test:8201")
    assert response.status_code == 200
    assert response.content_type.startswith("text/xml")
    root = etree.fromstring(response.data)
    locations = root.xpath(
        "//soap:address/@location", namespaces={"soap": "http://schemas.xmlsoap.org/wsdl/soap/"}
    )
    assert locations == ["http://sim.test:8201" + SOAP_PATH]
    assert root.get("targetNamespace") == "urn:ec.europa.eu:taxud:vies:services:checkVat"


def test_get_without_wsdl_is_refused(client: FlaskClient) -> None:
    assert client.get(SOAP_PATH).status_code == 405


# --- control endpoints ----------------------------------------------------------------------


def test_health(client: FlaskClient) -> None:
    assert client.get("/_sim/health").get_json() == {"status": "ok"}


def test_stats_and_reset(client: FlaskClient) -> None:
    check_vat(client, "DE", "100")
    check_vat(client, "DE", "301")
    post(client, envelope("checkVatApprox", countryCode="FR", vatNumber="100"))
    post(client, b"<broken")
    stats = client.get("/_sim/stats").get_json()
    assert stats["calls"] == 4
    assert stats["by_country"] == {"DE": 2, "FR": 1}
    assert stats["by_operation"] == {"checkVat": 2, "checkVatApprox": 1}
    assert stats["max_in_flight"] == {"DE": 1, "FR": 1}
    assert stats["faults"] == {"MS_UNAVAILABLE": 1, "INVALID_INPUT": 1}

    reset = client.post("/_sim/reset").get_json()
    assert reset["calls"] == 0
    assert reset["by_country"] == {} and reset["faults"] == {} and reset["max_in_flight"] == {}
    assert client.get("/_sim/stats").get_json()["calls"] == 0


# --- the real process with a real SOAP client -----------------------------------------------


@pytest.fixture()
def simulator_url(tmp_path: Path) -> Iterator[str]:
    """Start ``python -m simulators.vies`` on a free port; yield its base URL."""
    log = (tmp_path / "simulator.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "simulators.vies", "--host", "127.0.0.1", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
    )
    try:
        assert process.stdout is not None
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            ready = selector.select(timeout=15)
        line = process.stdout.readline().strip() if ready else ""
        match = re.fullmatch(r"vies-simulator listening on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"no start line ({line!r}); log: {(tmp_path / 'simulator.log').read_text()}"
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            returncode = process.wait(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()
            log.close()
    assert returncode == 0


def test_zeep_client_against_running_simulator(simulator_url: str) -> None:
    session = requests.Session()
    session.trust_env = False  # never through a proxy
    client = zeep.Client(str(WSDL_FILE), transport=zeep.Transport(session=session))
    service = client.create_service(BINDING, simulator_url + SOAP_PATH)

    result = service.checkVat(countryCode="DE", vatNumber="100")
    assert result.valid is True
    assert result.name == "John Doe"
    assert result.countryCode == "DE"

    approx_result = service.checkVatApprox(
        countryCode="DE",
        vatNumber="136695976",
        traderName="Beispiel GmbH",
        requesterCountryCode="FR",
        requesterVatNumber="29528163777",
    )
    assert approx_result.valid is True
    assert approx_result.traderNameMatch == "3"
    assert REQUEST_IDENTIFIER.fullmatch(approx_result.requestIdentifier)

    with pytest.raises(zeep.exceptions.Fault) as raised:
        service.checkVat(countryCode="DE", vatNumber="301")
    assert raised.value.message == "MS_UNAVAILABLE"

    with session.get(simulator_url + "/_sim/stats") as response:
        stats = response.json()
    assert stats["by_operation"] == {"checkVat": 2, "checkVatApprox": 1}
    session.close()


def test_a_knob_the_simulator_cannot_read_is_a_usage_error_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators.vies", "--ms-limit", "DE=x"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2 and "error:" in result.stderr
    assert "Traceback" not in result.stderr
