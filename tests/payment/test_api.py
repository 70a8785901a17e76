"""``POST /v1/payment/check`` end to end in-process, against the payee simulator and real Redis."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac

import pytest
import redis
import requests
from flask import Flask
from flask.testing import FlaskClient
from redis.backoff import NoBackoff
from redis.retry import Retry

from services.payment import create_app
from services.payment.checks import CheckRequest, PaymentChecker
from services.payment.codes import CODES
from shared.config import load
from shared.errors import ConfigError
from shared.outbound import NotSent
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError
from tests.conftest import AUTH, INTERNAL_TOKEN, FakeClock, free_port
from tests.payment.conftest import FINGERPRINT_KEY, settings
from tests.payment.fakes import FakePayee

URL = "/v1/payment/check"
ACME = "DE89370400440532013000"  # Commerzbank; "Acme Trading GmbH" at the simulated bank
CHECK_NAMES = ["length", "format", "checksum", "national_check_digits", "bank_code",
               "bic_format", "bic_iban_consistency", "sepa"]


def check(client: FlaskClient, **body: object) -> dict:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def by_name(result: dict) -> dict[str, dict]:
    return {c["name"]: c for c in result["checks"]}


def sim_stats(payee: str) -> dict:
    return requests.get(payee + "/_sim/stats", timeout=5).json()


# --- the answer -----------------------------------------------------------------------------


def test_valid_iban_and_bic(client: FlaskClient) -> None:
    r = check(client, iban="DE89 3704 0044 0532 0130 00", bic="COBADEFF")
    assert r["status"] == "valid"
    assert r["iban_masked"] == "DE****3000" and r["country_code"] == "DE"
    assert [c["name"] for c in r["checks"]] == CHECK_NAMES
    assert {c["result"] for c in r["checks"]} == {"pass"}
    assert r["bank"] == {"name": "Commerzbank", "bic": "COBADEFFXXX",
                         "source": r["bank"]["source"]}
    assert r["bank"]["source"].startswith("schwifty ")
    assert r["sepa"]["member"] is True and r["sepa"]["as_of"] == "2025-05-22"
    assert r["errors"] == [] and r["warnings"] == []
    assert r["holder_match"]["result"] == "not_possible"
    assert r["payee"] is None and r["error"] is None
    assert r["sandbox"] is True and r["checked_at"].endswith("Z")


def test_fingerprint_is_the_keyed_hmac_of_the_normalised_iban(client: FlaskClient) -> None:
    a = check(client, iban="iban de89 3704 0044 0532 0130 00")["account_fingerprint"]
    b = check(client, iban=ACME)["account_fingerprint"]
    expected = hmac.new(FINGERPRINT_KEY.encode(), ACME.encode(), hashlib.sha256).hexdigest()
    assert a == b == expected
    other = check(client, iban="GB29NWBK60161331926819")["account_fingerprint"]
    assert other != a
    assert check(client, iban="DE88370400440532013000")["account_fingerprint"] is None


def test_fingerprint_depends_on_the_key(payee: str, store: Store) -> None:
    other = create_app(settings(payee, store, PAYMENT_FINGERPRINT_KEY="another-key-" + "x" * 30))
    ours = hmac.new(FINGERPRINT_KEY.encode(), ACME.encode(), hashlib.sha256).hexdigest()
    assert check(other.test_client(), iban=ACME)["account_fingerprint"] != ours


@pytest.mark.parametrize(("iban", "code", "failed"), [
    ("DE89 3704 0044 0532 0130 0", "IBAN_LENGTH", "length"),
    ("XX89 3704 0044 0532 0130 00", "IBAN_COUNTRY_UNKNOWN", "format"),
    ("DE89 3704 0044 0532 0130 0A", "IBAN_FORMAT", "format"),
    ("DE88 3704 0044 0532 0130 00", "IBAN_CHECKSUM", "checksum"),
    ("DE08370400440532013100", "IBAN_NATIONAL_CHECKSUM", "national_check_digits"),
    ("D\u0415893704004405320130 00", "IBAN_CONFUSABLE_CHARACTERS", "format"),
    ("DE89-3704-0044-0532-0130-00", "IBAN_INVALID_CHARACTERS", "format"),
])
def test_an_invalid_iban_is_an_answer(client: FlaskClient, iban: str, code: str,
                                      failed: str) -> None:
    r = check(client, iban=iban)
    assert r["status"] == "invalid"
    assert r["errors"] == [code]
    assert by_name(r)[failed]["result"] == "fail" and by_name(r)[failed]["code"] == code
    well_formed = failed == "national_check_digits"  # format, length and checksum passed
    assert by_name(r)["sepa"]["result"] == ("pass" if well_formed else "not_available")
    assert (r["account_fingerprint"] is not None) is well_formed


@pytest.mark.parametrize(("bic", "status", "code", "result"), [
    ("DEUTDEFF", "invalid", "BIC_BANK_MISMATCH", "fail"),
    ("BNPAFRPP", "invalid", "BIC_COUNTRY_MISMATCH", "fail"),
    ("COBADEFF999", "valid", "BIC_OTHER_BRANCH", "warning"),
])
def test_bic_consistency(client: FlaskClient, bic: str, status: str, code: str,
                         result: str) -> None:
    r = check(client, iban=ACME, bic=bic)
    assert r["status"] == status
    assert by_name(r)["bic_iban_consistency"]["result"] == result
    assert code in (r["errors"] if result == "fail" else r["warnings"])


def test_bad_bic_format_makes_the_details_invalid(client: FlaskClient) -> None:
    r = check(client, iban=ACME, bic="COBADEF")
    assert r["status"] == "invalid" and r["errors"] == ["BIC_FORMAT"]
    assert by_name(r)["bic_iban_consistency"]["result"] == "not_available"


def test_kosovo_bic_is_accepted(client: FlaskClient) -> None:
    r = check(client, iban="XK051212012345678906", bic="RAIFXKPR")
    assert r["status"] == "valid"
    assert by_name(r)["bic_format"]["result"] == "pass"
    assert r["sepa"]["member"] is False and "SEPA_NOT_MEMBER" in r["warnings"]


def test_sepa_by_the_projects_table(client: FlaskClient) -> None:
    assert by_name(check(client, iban="RS35260005601001611379"))["sepa"]["result"] == "pass"
    nc = check(client, iban="NC8420041010050500013M02606")
    assert nc["status"] == "valid" and nc["sepa"]["member"] is False
    assert by_name(nc)["sepa"]["code"] == "SEPA_NOT_MEMBER"


def test_every_code_answered_is_documented(client: FlaskClient) -> None:
    seen: set[str] = set()
    for body in ({"iban": "DE08370400440532013100"}, {"iban": ACME, "bic": "DEUTDEFF"},
                 {"iban": "AO28091390996030824628194"}, {"iban": "DE37999999990123456789"}):
        r = check(client, **body)
        seen |= set(r["errors"]) | set(r["warnings"])
    assert seen and seen <= set(CODES)


# --- holder_match (shared name normaliser) --------------------------------------------------


@pytest.mark.parametrize(("holder", "trader", "result"), [
    ("ACME Trading GmbH", "Acme Trading Gesellschaft mit beschränkter Haftung", "match"),
    ("Société Générale S.A.", "SOCIETE GENERALE", "match"),
    ("ACME GmbH", "ACME AG", "close_match"),
    ("Acme Trading GmbH", "Zenith Logistics B.V.", "no_match"),
])
def test_holder_match(client: FlaskClient, holder: str, trader: str, result: str) -> None:
    r = check(client, iban=ACME, account_holder=holder, trader_name=trader)
    assert r["holder_match"]["result"] == result
    assert 0 <= r["holder_match"]["score"] <= 1
    if result == "close_match":
        assert r["holder_match"]["matched_name"] == trader
        assert "HOLDER_CLOSE_MATCH" in r["warnings"]
    else:
        assert r["holder_match"]["matched_name"] is None
    if result == "no_match":
        assert "HOLDER_NO_MATCH" in r["warnings"]
    assert r["status"] == "valid"  # a name is not the payment details


@pytest.mark.parametrize("body", [{"account_holder": "ACME GmbH"}, {"trader_name": "ACME GmbH"},
                                  {}])
def test_holder_match_not_possible(client: FlaskClient, body: dict) -> None:
    r = check(client, iban=ACME, **body)
    assert r["holder_match"] == {"result": "not_possible", "matched_name": None, "score": None,
                                 "detail": r["holder_match"]["detail"]}


# --- payee verification ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "result", "code", "warning"), [
    ("ACME Trading GmbH", "match", "MTCH", None),
    ("Acme Trading", "close_match", "CMTC", "PAYEE_CLOSE_MATCH"),
    ("Zenith Logistics BV", "no_match", "NMTC", "PAYEE_NO_MATCH"),
])
def test_payee_outcomes(client: FlaskClient, name: str, result: str, code: str,
                        warning: str | None) -> None:
    r = check(client, iban=ACME, account_holder=name, verify_payee=True)
    assert r["status"] == "valid"
    p = r["payee"]
    assert (p["result"], p["code"], p["source"], p["name_checked"]) == (
        result, code, "vop", "account_holder")
    assert p["matched_name"] == ("Acme Trading GmbH" if code == "CMTC" else None)
    assert (warning in r["warnings"]) if warning else not r["warnings"]


def test_payee_not_possible(client: FlaskClient) -> None:
    r = check(client, iban="AT611904300234573201", trader_name="Alpen Handel GmbH",
              verify_payee=True)
    assert r["status"] == "valid"
    assert r["payee"]["code"] == "NOAP" and r["payee"]["result"] == "not_possible"
    assert r["payee"]["name_checked"] == "trader_name"
    assert "PAYEE_NOT_POSSIBLE" in r["warnings"]


def test_payee_answer_is_cached(client: FlaskClient, payee: str) -> None:
    first = check(client, iban=ACME, account_holder="Acme Trading", verify_payee=True)
    second = check(client, iban="de89 3704 0044 0532 0130 00", account_holder="Acme Trading",
                   verify_payee=True)
    assert first["payee"]["source"] == "vop" and second["payee"]["source"] == "cache"
    assert second["payee"]["matched_name"] == "Acme Trading GmbH"
    assert sim_stats(payee)["calls"] == 1


def test_payee_timeout_is_unavailable_and_not_cached(client: FlaskClient, payee: str) -> None:
    requests.patch(payee + "/_sim/config", json={"latency_ms": 1500}, timeout=5)
    r = check(client, iban=ACME, account_holder="ACME Trading GmbH", verify_payee=True)
    assert r["status"] == "unavailable"
    assert r["error"]["code"] == "UPSTREAM_TIMEOUT" and r["error"]["retryable"] is True
    assert r["retry_after_s"] > 0
    assert r["payee"]["result"] is None
    assert r["errors"] == []  # the details themselves are fine
    requests.patch(payee + "/_sim/config", json={"latency_ms": None}, timeout=5)
    again = check(client, iban=ACME, account_holder="ACME Trading GmbH", verify_payee=True)
    assert again["status"] == "valid" and again["payee"]["source"] == "vop"


def test_provider_down_opens_the_circuit(client: FlaskClient, payee: str) -> None:
    requests.patch(payee + "/_sim/config", json={"fail": "http_503"}, timeout=5)
    codes = [check(client, iban=ACME, account_holder="Acme", verify_payee=True)["error"]["code"]
             for _ in range(4)]
    assert codes == ["UPSTREAM_UNREACHABLE"] * 3 + ["CIRCUIT_OPEN"]
    assert sim_stats(payee)["calls"] == 3  # the open circuit answered without asking


def test_provider_down_without_verify_payee_is_still_valid(client: FlaskClient,
                                                           payee: str) -> None:
    requests.patch(payee + "/_sim/config", json={"fail": "http_503"}, timeout=5)
    r = check(client, iban=ACME, account_holder="Acme Trading GmbH", trader_name="Acme")
    assert r["status"] == "valid" and r["payee"] is None
    assert sim_stats(payee)["calls"] == 0


def test_payee_is_not_asked_for_invalid_details(client: FlaskClient, payee: str) -> None:
    r = check(client, iban="DE88370400440532013000", account_holder="Acme", verify_payee=True)
    assert r["status"] == "invalid" and r["payee"]["result"] == "not_possible"
    assert r["payee"]["code"] is None
    assert sim_stats(payee)["calls"] == 0


def test_payee_is_not_asked_outside_sepa(client: FlaskClient, payee: str) -> None:
    r = check(client, iban="TR330006100519786457841326", account_holder="Acme",
              verify_payee=True)
    assert r["status"] == "valid" and r["payee"]["result"] == "not_possible"
    assert "PAYEE_NOT_POSSIBLE" in r["warnings"]
    assert sim_stats(payee)["calls"] == 0


# --- bad requests ---------------------------------------------------------------------------


@pytest.mark.parametrize(("body", "field"), [
    ({}, "iban"),
    ({"iban": 5}, "iban"),
    ({"iban": ["DE89370400440532013000"]}, "iban"),
    ({"iban": None}, "iban"),
    ({"iban": ""}, "iban"),
    ({"iban": "D" * 65}, "iban"),
    ({"iban": ACME, "bic": 7}, "bic"),
    ({"iban": ACME, "account_holder": "x" * 141}, "account_holder"),
    ({"iban": ACME, "verify_payee": "perhaps"}, "verify_payee"),
    ({"iban": ACME, "verify_payee": True}, "verify_payee"),
    ({"iban": ACME, "iban_number": "x"}, "iban_number"),
])
def test_malformed_requests_are_400_problems(client: FlaskClient, body: dict,
                                             field: str) -> None:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 400
    assert resp.content_type == "application/problem+json"
    problem = resp.get_json()
    assert problem["status"] == 400 and field in problem["errors"]
    assert field in problem["detail"]
    assert ACME not in resp.get_data(as_text=True)


@pytest.mark.parametrize(("data", "content_type"), [
    (ACME, "application/json"),
    ('{"iban": "' + ACME + '"', "application/json"),
    ("iban=" + ACME, "application/x-www-form-urlencoded"),
    (ACME, "text/plain"),
])
def test_not_json_is_a_400_that_does_not_echo(client: FlaskClient, data: str,
                                              content_type: str) -> None:
    resp = client.post(URL, data=data, headers={**AUTH, "Content-Type": content_type})
    assert resp.status_code == 400
    assert resp.get_json()["status"] == 400 and resp.get_json()["errors"]
    assert ACME not in resp.get_data(as_text=True)


def test_iban_as_a_field_name_is_masked(client: FlaskClient) -> None:
    resp = client.post(URL, json={"iban": "x", ACME: "y"}, headers=AUTH)
    assert resp.status_code == 400
    assert "DE****3000" in resp.get_json()["errors"]
    assert ACME not in resp.get_data(as_text=True)


def test_token_required(client: FlaskClient) -> None:
    resp = client.post(URL, json={"iban": ACME})
    assert resp.status_code == 401 and resp.content_type == "application/problem+json"


def test_openapi_documents_the_route(client: FlaskClient) -> None:
    doc = client.get("/openapi.json").get_json()
    op = doc["paths"]["/v1/payment/check"]["post"]
    assert "200" in op["responses"]
    schema = doc["components"]["schemas"]["PaymentCheckResult"]
    assert "IBAN_NATIONAL_CHECKSUM" in schema["properties"]["errors"]["description"]


def test_readyz(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200 and resp.get_json()["checks"]["payee_client"] == "ok"


# --- configuration --------------------------------------------------------------------------


def test_fingerprint_key_required_outside_sandbox(payee: str, store: Store) -> None:
    with pytest.raises(ConfigError, match="TRACE30_PAYMENT_FINGERPRINT_KEY is not set"):
        create_app(settings(payee, store, SANDBOX=False, PAYMENT_FINGERPRINT_KEY=None))


@pytest.mark.parametrize("key", ["short", "trace30-sandbox-fingerprint-key"])
def test_weak_fingerprint_key_refused_outside_sandbox(payee: str, store: Store, key: str) -> None:
    with pytest.raises(ConfigError, match="at least 32 characters"):
        create_app(settings(payee, store, SANDBOX=False, PAYMENT_FINGERPRINT_KEY=key))


def test_sandbox_has_a_documented_default_key(payee: str, store: Store) -> None:
    app = create_app(settings(payee, store, PAYMENT_FINGERPRINT_KEY=None))
    fp = check(app.test_client(), iban=ACME)["account_fingerprint"]
    expected = hmac.new(b"trace30-sandbox-fingerprint-key", ACME.encode(), hashlib.sha256)
    assert fp == expected.hexdigest()


def test_settings_defaults() -> None:
    prod = load({})
    assert prod["PAYEE_VERIFICATION_URL"].startswith("https://")
    assert prod["PAYMENT_FINGERPRINT_KEY"] is None
    sandbox = load({"TRACE30_SANDBOX": "1"})
    assert sandbox["PAYEE_VERIFICATION_URL"] == "http://127.0.0.1:8203/vop/v1"
    assert sandbox["PAYMENT_FINGERPRINT_KEY"] == "trace30-sandbox-fingerprint-key"


def test_production_app_starts_with_a_key(payee: str, store: Store) -> None:
    app: Flask = create_app(settings(payee, store, SANDBOX=False,
                                     PAYMENT_FINGERPRINT_KEY="k" * 40,
                                     INTERNAL_TOKEN=INTERNAL_TOKEN))
    r = check(app.test_client(), iban=ACME)
    assert r["sandbox"] is False and r["status"] == "valid"


# --- provider faults through a fake, and Redis down -----------------------------------------


def test_rejected_request_is_unavailable_not_retryable(payee: str, store: Store,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    fake = FakePayee(UpstreamError("the payee-verification provider refused the request: "
                                   "HTTP 401", Fault.REJECTED))
    client = create_app(settings(payee, store, PAYEE=fake)).test_client()
    for _ in range(4):  # a configuration fault does not open the circuit
        r = check(client, iban=ACME, account_holder="Acme", verify_payee=True)
        assert r["status"] == "unavailable"
        assert r["error"]["code"] == "UPSTREAM_REJECTED" and r["error"]["retryable"] is False
        assert r["retry_after_s"] is None
    assert len(fake.calls) == 4
    assert "needs attention" in caplog.text


def test_provider_gets_the_normalised_iban_and_the_directorys_bic(payee: str,
                                                                  store: Store) -> None:
    fake = FakePayee()
    client = create_app(settings(payee, store, PAYEE=fake)).test_client()
    check(client, iban="de89 3704 0044 0532 0130 00", trader_name="Acme", verify_payee=True)
    check(client, iban="GB29NWBK60161331926819", account_holder="Acme", bic="NWBKGB2L",
          verify_payee=True)
    assert fake.calls == [
        {"name": "Acme", "iban": ACME, "bic": "COBADEFFXXX"},
        {"name": "Acme", "iban": "GB29NWBK60161331926819", "bic": "NWBKGB2L"},
    ]


def test_bad_response_is_unavailable(client: FlaskClient, payee: str) -> None:
    requests.patch(payee + "/_sim/config", json={"fail": "bad_response"}, timeout=5)
    r = check(client, iban=ACME, account_holder="Acme", verify_payee=True)
    assert r["status"] == "unavailable" and r["error"]["code"] == "UPSTREAM_BAD_RESPONSE"


def test_redis_down_still_verifies(payee: str, caplog: pytest.LogCaptureFixture) -> None:
    """Without Redis the cache misses and the breaker is skipped; the answer still comes."""
    # No retries: redis-py's default policy would back off for seconds on every call.
    dead = Store(redis.Redis(host="127.0.0.1", port=free_port(), socket_timeout=0.2,
                             socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0),
                             decode_responses=True), "trace30test:")
    client = create_app(settings(payee, dead)).test_client()
    r = check(client, iban=ACME, account_holder="ACME Trading GmbH", verify_payee=True)
    assert r["status"] == "valid" and r["payee"]["code"] == "MTCH"
    assert "payee cache unavailable" in caplog.text and "breaker unavailable" in caplog.text


def test_cache_lifetimes(client: FlaskClient, store: Store) -> None:
    check(client, iban=ACME, account_holder="ACME Trading GmbH", verify_payee=True)
    check(client, iban="AT611904300234573201", account_holder="Alpen Handel GmbH",
          verify_payee=True)
    ttls = sorted(store.client.ttl(k) for k in store.client.scan_iter(
        match=store.prefix + "payment:payee:*"))
    assert len(ttls) == 2
    assert 3500 < ttls[0] <= 3600  # NOAP: at most an hour
    assert 86000 < ttls[1] <= 86400  # MTCH: TRACE30_PAYEE_CACHE_TTL_S


class _Bypass:
    """The checker behind a schema that let a control character through (the defensive line
    the API keeps whatever the schema refuses)."""

    def __init__(self, checker: PaymentChecker, junk: str) -> None:
        self.checker = checker
        self.junk = junk

    def check(self, req: CheckRequest) -> dict:
        return self.checker.check(dataclasses.replace(
            req,
            account_holder=req.account_holder and req.account_holder + self.junk,
            trader_name=req.trader_name and req.trader_name + self.junk,
        ))


@pytest.mark.parametrize("junk", ["\x01", "\x00"])
@pytest.mark.parametrize(("body", "field"), [
    ({"account_holder": "ACME Trading GmbH", "trader_name": "ACME"}, "account_holder"),
    ({"trader_name": "ACME Trading GmbH"}, "trader_name"),
])
def test_a_name_no_request_can_carry_is_a_400_naming_the_field(
        app: Flask, payee: str, body: dict, field: str, junk: str) -> None:
    """Finding 2 of issue 9, for payee verification: such a name is the caller's fault, not
    the provider's: a 400 naming the field the name came from; nothing sent, nothing counted,
    and the next check is answered."""
    checker = app.extensions["trace30.payment"]
    checker.breaker.threshold = 1  # a single counted failure would open the circuit
    app.extensions["trace30.payment"] = _Bypass(checker, junk)
    client = app.test_client()
    resp = client.post(URL, json={"iban": ACME, "verify_payee": True, **body}, headers=AUTH)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    problem = resp.get_json()
    assert set(problem["errors"]) == {field}
    assert "ACME" not in resp.get_data(as_text=True) and ACME not in resp.get_data(as_text=True)
    assert sim_stats(payee)["calls"] == 0
    assert checker.breaker.state("vop") == "closed"
    app.extensions["trace30.payment"] = checker
    r = check(client, iban=ACME, account_holder="ACME Trading GmbH", verify_payee=True)
    assert r["status"] == "valid" and r["payee"]["code"] == "MTCH"


def test_a_probe_whose_request_cannot_be_built_lets_the_next_check_probe(
        app: Flask, payee: str, clock: FakeClock) -> None:
    checker = app.extensions["trace30.payment"]
    checker.breaker.clock = clock
    for _ in range(3):
        checker.breaker.record_failure("vop", "UPSTREAM_UNREACHABLE")
    clock.advance(checker.breaker.cooldown_s + 1)
    assert checker.breaker.state("vop") == "half_open"
    with pytest.raises(NotSent):
        checker.check(CheckRequest(iban=ACME, account_holder="ACME\x01", verify_payee=True))
    r = checker.check(CheckRequest(iban=ACME, account_holder="ACME Trading GmbH",
                                   verify_payee=True))
    assert r["status"] == "valid" and r["payee"]["code"] == "MTCH"  # it probed at once
    assert checker.breaker.state("vop") == "closed"


def test_a_provider_url_no_request_can_go_to_stops_start_up(payee: str, store: Store) -> None:
    with pytest.raises(ConfigError, match="TRACE30_PAYEE_VERIFICATION_URL"):
        create_app(settings(payee, store, PAYEE_VERIFICATION_URL="vop.example/v1"))


def test_a_name_with_a_lone_surrogate_has_a_cache_key_of_its_own(app: Flask) -> None:
    cache = app.extensions["trace30.payment"].cache
    assert cache.key("fp", "ACME\ud800") != cache.key("fp", "ACME")
