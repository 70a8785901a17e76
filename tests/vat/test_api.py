"""``POST /v1/vat/check`` end to end in-process, against the VIES simulator and real Redis."""

from __future__ import annotations

import dataclasses

import pytest
import requests
from flask.testing import FlaskClient

from services.vat import create_app
from services.vat.checks import CheckRequest, VatChecker
from services.vat.vies import TraderQuery
from shared.errors import ConfigError
from shared.outbound import NotSent
from tests.conftest import AUTH, INTERNAL_TOKEN, VIES_PATH

URL = "/v1/vat/check"


def check(client: FlaskClient, **body: object) -> dict:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_de100_is_valid_john_doe(client: FlaskClient) -> None:
    r = check(client, vat_number="DE100")
    assert r["status"] == "valid"
    assert r["name"] == "John Doe"
    assert r["vat_number"] == "DE100" and r["country_code"] == "DE"
    assert r["format_valid"] is True
    assert r["source"] == "vies-soap" and r["sandbox"] is True
    assert r["cached"] is False and r["checked_at"]


@pytest.mark.parametrize("number", ["DE100", "DE136695977", "DE301"])
def test_answer_has_exactly_the_documented_fields(client: FlaskClient, number: str) -> None:
    from services.vat.schemas import VatCheckResultSchema

    assert set(check(client, vat_number=number)) == set(VatCheckResultSchema().fields)


class _Leaky:
    """A checker whose result carries a field the schema does not document (a personal one)."""

    def __init__(self, checker: VatChecker) -> None:
        self.checker = checker

    def check(self, req: CheckRequest) -> dict:
        return {**self.checker.check(req), "owner_email": "jane@example.com",
                "error": {"code": "X", "retryable": True, "message": "m", "iban": "DE89..."}}


def test_the_answer_is_serialised_through_its_schema(app, client: FlaskClient) -> None:
    """A field the checker adds that VatCheckResultSchema does not list never reaches the
    caller, at the top or nested: the API dumps through the schema, not the dict as it is."""
    from services.vat.schemas import VatCheckResultSchema

    app.extensions["trace30.vat"] = _Leaky(app.extensions["trace30.vat"])
    resp = client.post(URL, json={"vat_number": "DE100"}, headers=AUTH)
    assert resp.status_code == 200
    body = resp.get_json()
    assert set(body) == set(VatCheckResultSchema().fields)
    assert body["error"] == {"code": "X", "retryable": True, "message": "m"}
    assert "jane@example.com" not in resp.get_data(as_text=True)


def test_de301_is_unavailable_ms_unavailable(client: FlaskClient) -> None:
    r = check(client, vat_number="DE301")
    assert r["status"] == "unavailable"
    assert r["error"]["code"] == "MS_UNAVAILABLE"
    assert r["error"]["retryable"] is True
    assert r["retry_after_s"] > 0


# Every number of the VIES test service, and how trace30 classifies it.
CLASSIFICATION = {
    "100": ("valid", None, None),
    "200": ("invalid", None, None),
    "201": ("invalid", None, None),
    "202": ("unavailable", "INVALID_REQUESTER_INFO", False),
    "300": ("unavailable", "SERVICE_UNAVAILABLE", True),
    "301": ("unavailable", "MS_UNAVAILABLE", True),
    "302": ("unavailable", "TIMEOUT", True),
    "400": ("unavailable", "VAT_BLOCKED", False),
    "401": ("unavailable", "IP_BLOCKED", False),
    "500": ("unavailable", "GLOBAL_MAX_CONCURRENT_REQ", True),
    "501": ("unavailable", "GLOBAL_MAX_CONCURRENT_REQ_TIME", True),
    "600": ("unavailable", "MS_MAX_CONCURRENT_REQ", True),
    "601": ("unavailable", "MS_MAX_CONCURRENT_REQ_TIME", True),
    "700": ("unavailable", "UPSTREAM_BAD_RESPONSE", True),
    "702": ("unavailable", "UPSTREAM_UNREACHABLE", True),
    "703": ("unavailable", "MS_UNAVAILABLE", True),
    "704": ("unavailable", "SERVER_BUSY", True),
}


@pytest.mark.parametrize("number", sorted(CLASSIFICATION))
def test_every_test_number_classified(client: FlaskClient, number: str) -> None:
    status, code, retryable = CLASSIFICATION[number]
    r = check(client, vat_number="FR" + number)
    assert r["status"] == status
    if code:
        assert r["error"] == {"code": code, "retryable": retryable,
                              "message": r["error"]["message"]}
    else:
        assert r["error"] is None
    if status == "invalid":
        assert r["reason"] == "vies"


def test_slow_vies_is_unavailable_within_deadline(client: FlaskClient, vies: str) -> None:
    requests.patch(vies + "/_sim/config", json={"slow_seconds": 5}, timeout=5)
    r = check(client, vat_number="FR701")
    assert r["status"] == "unavailable"
    assert r["error"]["code"] == "UPSTREAM_TIMEOUT"


def test_unavailable_is_not_cached(client: FlaskClient, vies: str) -> None:
    check(client, vat_number="IT301")
    check(client, vat_number="IT301")
    stats = requests.get(vies + "/_sim/stats", timeout=5).json()
    assert stats["calls"] >= 4  # each check asked (and retried) again


def test_cache_hit_miss_and_forced_refresh(client: FlaskClient, vies: str) -> None:
    first = check(client, vat_number="ES B83891812")
    assert first["status"] == "valid" and first["cached"] is False
    assert first["name"] == "Rodrisa Automoviles"
    assert check(client, vat_number="esb83891812")["cached"] is True
    assert check(client, vat_number="ESB83891812", max_age_s=0)["cached"] is False
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 2


def test_approximate_check_with_requester(client: FlaskClient) -> None:
    r = check(client, vat_number="ESB83891812", requester_vat_number="NL004495445B01",
              trader={"name": "Rodrisa Automoviles", "city": "Sevilla", "postcode": "28430"})
    assert r["consultation_number"].startswith("WAPIAAAA")
    assert r["match"] == {"name": "valid", "city": "invalid", "postcode": "valid"}


def test_germany_name_hidden(client: FlaskClient) -> None:
    r = check(client, vat_number="DE136695976")
    assert r["status"] == "valid"
    assert r["name"] is None and r["address"] is None


def test_local_checksum_failure_does_not_call_vies(client: FlaskClient, vies: str) -> None:
    r = check(client, vat_number="DE136695977")
    assert r["status"] == "invalid" and r["reason"] == "checksum" and r["source"] == "local"
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 0


def test_outage_serves_stale_only_when_allowed(client: FlaskClient, vies: str) -> None:
    assert check(client, vat_number="LU26375245")["status"] == "valid"
    requests.patch(vies + "/_sim/config", json={"down": ["LU"]}, timeout=5)
    assert check(client, vat_number="LU26375245", max_age_s=0)["status"] == "unavailable"
    stale = check(client, vat_number="LU26375245", max_age_s=0, allow_stale=True)
    assert stale["status"] == "valid" and stale["stale"] is True
    assert stale["error"]["code"] in {"MS_UNAVAILABLE", "CIRCUIT_OPEN"}


def test_breaker_opens_for_a_down_member_state(app, client: FlaskClient, vies: str) -> None:
    app.extensions["trace30.vat"].breaker.threshold = 2
    requests.patch(vies + "/_sim/config", json={"down": ["SE"]}, timeout=5)
    first = check(client, vat_number="SE556703748501")
    assert first["attempts"] > 1 and first["error"]["code"] == "MS_UNAVAILABLE"
    # one check, however many attempts, is one failure: a second check is still asked
    assert check(client, vat_number="SE556703748501")["error"]["code"] == "MS_UNAVAILABLE"
    calls = requests.get(vies + "/_sim/stats", timeout=5).json()["calls"]
    r = check(client, vat_number="SE556703748501")
    assert r["error"]["code"] == "CIRCUIT_OPEN"
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == calls


@pytest.mark.parametrize("name", ["Evil\x01 GmbH", "Evil\x00 GmbH", "Evil\ud800 GmbH"])
def test_a_name_vies_cannot_carry_leaves_the_member_state_up(
        app, client: FlaskClient, vies: str, name: str) -> None:
    """Finding 2 of issue 9: one signup whose name lxml refuses opened Germany's circuit (five
    retries counted as five failures) and every other German signup was pending for 30 s.
    The request is refused as the caller's fault, VIES is not asked, the breaker not told."""
    checker = app.extensions["trace30.vat"]
    checker.breaker.threshold = 1  # a single counted failure would open the circuit
    with pytest.raises(NotSent) as refused:
        checker.check(CheckRequest("DE100", trader=TraderQuery(name=name)))
    assert set(refused.value.fields) == {"trader.name"}
    assert name not in str(refused.value)
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 0
    assert checker.breaker.state("DE") == "closed"
    r = check(client, vat_number="DE100", trader={"name": "John Doe"})
    assert r["status"] == "valid" and r["name"] == "John Doe"


class _Bypass:
    """The checker behind a schema that let a control character through (the defensive line
    the API keeps whatever the schema refuses)."""

    def __init__(self, checker: VatChecker) -> None:
        self.checker = checker

    def check(self, req: CheckRequest) -> dict:
        trader = dataclasses.replace(req.trader or TraderQuery(), city="Berlin\x01")
        return self.checker.check(dataclasses.replace(req, trader=trader))


def test_text_vies_cannot_carry_is_a_400_naming_the_field(app, client: FlaskClient,
                                                         vies: str) -> None:
    app.extensions["trace30.vat"] = _Bypass(app.extensions["trace30.vat"])
    resp = client.post(URL, json={"vat_number": "DE100", "trader": {"name": "John Doe"}},
                       headers=AUTH)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    body = resp.get_json()
    assert set(body["errors"]) == {"trader.city"}
    assert "trader.city" in body["detail"] and "Berlin" not in resp.get_data(as_text=True)
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 0


def test_a_vies_url_no_request_can_go_to_stops_start_up(store) -> None:
    with pytest.raises(ConfigError, match="TRACE30_VIES_URL"):
        create_app({"TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
                    "VIES_URL": "ec.europa.eu/taxation_customs", "REDIS_STORE": store})


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"vat_number"}),
        ({"vat_number": 123}, {"vat_number"}),
        ({"vat_number": None}, {"vat_number"}),
        ({"vat_number": "DE" + "1" * 70}, {"vat_number"}),
        ({"vat_number": ""}, {"vat_number"}),
        ({"vat_number": "DE100", "surprise": 1}, {"surprise"}),
        ({"vat_number": "DE100", "max_age_s": -1}, {"max_age_s"}),
        ({"vat_number": "DE100", "priority": "urgent"}, {"priority"}),
        ({"vat_number": "DE100", "trader": {"company_type": "x"}}, {"trader"}),
        ({"vat_number": "DE100", "trader": "ACME"}, {"trader"}),
        ([1, 2], {"_schema"}),
    ],
)
def test_bad_input_is_400_problem(client: FlaskClient, body: object, fields: set[str]) -> None:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 400
    assert resp.content_type == "application/problem+json"
    problem = resp.get_json()
    assert problem["status"] == 400 and problem["title"] and problem["type"]
    assert fields <= set(problem["errors"])
    assert "Traceback" not in resp.get_data(as_text=True)


@pytest.mark.parametrize(
    ("data", "content_type"),
    [("{not json", "application/json"), ("vat_number=DE100", "application/x-www-form-urlencoded"),
     ("", "application/json")],
)
def test_non_json_is_400_problem(client: FlaskClient, data: str, content_type: str) -> None:
    resp = client.post(URL, data=data, headers={**AUTH, "Content-Type": content_type})
    assert resp.status_code == 400
    assert resp.content_type == "application/problem+json"
    assert resp.get_json()["errors"]


def test_auth_required(client: FlaskClient) -> None:
    resp = client.post(URL, json={"vat_number": "DE100"})
    assert resp.status_code == 401
    assert resp.content_type == "application/problem+json"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = client.post(URL, json={"vat_number": "DE100"}, headers={"Authorization": "Bearer x"})
    assert wrong.status_code == 401


def test_404_and_405_are_problems(client: FlaskClient) -> None:
    nf = client.get("/v1/nothing", headers=AUTH)
    assert nf.status_code == 404 and nf.content_type == "application/problem+json"
    na = client.get(URL, headers=AUTH)
    assert na.status_code == 405 and na.content_type == "application/problem+json"
    assert "POST" in na.headers["Allow"]


def test_health_ready_and_openapi(client: FlaskClient) -> None:
    assert client.get("/healthz").get_json()["status"] == "ok"
    ready = client.get("/readyz").get_json()
    assert ready["checks"] == {"redis": "ok", "vies_wsdl": "ok", "vat_source_gb": "ok",
                               "vat_source_ch": "ok", "vat_source_no": "ok"}
    spec = client.get("/openapi.json").get_json()
    op = spec["paths"]["/v1/vat/check"]["post"]
    assert "400" in op["responses"]
    assert "VatCheckRequest" in spec["components"]["schemas"]


def test_request_id_echoed(client: FlaskClient) -> None:
    resp = client.post(URL, json={"vat_number": "DE100"},
                       headers={**AUTH, "X-Request-ID": "abc-123"})
    assert resp.headers["X-Request-ID"] == "abc-123"


def test_test_numbers_refused_outside_sandbox(vies: str, store) -> None:
    app = create_app({"TESTING": True, "SANDBOX": False, "INTERNAL_TOKEN": INTERNAL_TOKEN,
                      "VIES_URL": vies + VIES_PATH, "REDIS_STORE": store})
    r = app.test_client().post(URL, json={"vat_number": "DE100"}, headers=AUTH).get_json()
    assert r["status"] == "invalid" and r["source"] == "local"
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 0


def test_missing_token_outside_sandbox_stops_start_up(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TRACE30_INTERNAL_TOKEN", raising=False)
    monkeypatch.delenv("TRACE30_SANDBOX", raising=False)
    with pytest.raises(ConfigError, match="TRACE30_INTERNAL_TOKEN"):
        create_app({"TESTING": True})


def test_batch_priority_is_accepted(client: FlaskClient) -> None:
    """Re-verification jobs ask with ``priority: batch`` (they yield VIES slots to signups)."""
    assert check(client, vat_number="DE100", priority="batch")["status"] == "valid"


def test_sandbox_asks_as_the_demo_marketplace_and_keeps_the_consultation_number(
        client: FlaskClient) -> None:
    """Without a requester in the request, the platform's own VAT number goes to VIES (in
    sandbox the simulator's demo marketplace), so the answer carries the proof of the check."""
    r = check(client, vat_number="FR19812345676")
    assert r["status"] == "valid"
    assert r["consultation_number"].startswith("WAPIAAAA")


def test_no_requester_outside_sandbox_is_logged(vies: str, store, caplog) -> None:
    caplog.set_level("WARNING", logger="services.vat")
    create_app({"TESTING": True, "SANDBOX": False, "INTERNAL_TOKEN": INTERNAL_TOKEN,
                "VIES_URL": vies + VIES_PATH, "REDIS_STORE": store})
    assert any("TRACE30_REQUESTER_VAT_NUMBER is not set" in r.getMessage()
               for r in caplog.records)
    caplog.clear()
    create_app({"TESTING": True, "SANDBOX": False, "INTERNAL_TOKEN": INTERNAL_TOKEN,
                "VIES_URL": vies + VIES_PATH, "REDIS_STORE": store,
                "REQUESTER_VAT_NUMBER": "NL820246633B01"})
    assert not any("REQUESTER_VAT_NUMBER" in r.getMessage() for r in caplog.records)
