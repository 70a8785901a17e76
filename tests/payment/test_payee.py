"""The Verification of Payee adapter (services.payment.payee): the simulator over real HTTP,
and ``responses`` for the answers the simulator does not give. The contract every adapter
keeps (timeouts, outages, throttles, malformed answers, no listener) is tested once, in
``tests/contract/test_adapters.py``."""

from __future__ import annotations

import json
import uuid

import pytest
import requests
import responses

from services.payment.payee import HttpPayeeVerification, PayeeAnswer
from shared.outbound import NotSent
from shared.upstream import Fault, UpstreamError

ACME = "DE89370400440532013000"  # "Acme Trading GmbH" in the simulator's accounts
MUELLER = "DE02120300000000202051"  # "Müller Gartenbau GmbH"
NOT_IN_SCHEME = "AT611904300234573201"  # the bank does not take part: NOAP
SLOW = "DE02500105170137075030"  # answers after slow_seconds
UNKNOWN = "NL02ABNA0123456789"  # no such account in the simulator


def vop(base: str, read_timeout_s: float = 2.0) -> HttpPayeeVerification:
    return HttpPayeeVerification(base + "/vop/v1", connect_timeout_s=1.0,
                                 read_timeout_s=read_timeout_s)


def config(base: str, **knobs: object) -> None:
    requests.patch(base + "/_sim/config", json=knobs, timeout=5).raise_for_status()


def stats(base: str) -> dict:
    return requests.get(base + "/_sim/stats", timeout=5).json()


# --- each outcome, over real HTTP -----------------------------------------------------------


def test_match(payee: str) -> None:
    assert vop(payee).verify(name="ACME Trading GmbH", iban=ACME) == PayeeAnswer("MTCH")


def test_match_after_transliteration(payee: str) -> None:
    assert vop(payee).verify(name="Muller Gartenbau GmbH", iban=MUELLER).result == "MTCH"


def test_close_match_returns_the_holders_name(payee: str) -> None:
    answer = vop(payee).verify(name="Acme Trading", iban=ACME, bic="COBADEFFXXX")
    assert answer == PayeeAnswer("CMTC", "Acme Trading GmbH")


def test_no_match(payee: str) -> None:
    assert vop(payee).verify(name="Zenith Logistics BV", iban=ACME) == PayeeAnswer("NMTC")


@pytest.mark.parametrize("iban", [NOT_IN_SCHEME, UNKNOWN])
def test_not_possible(payee: str, iban: str) -> None:
    assert vop(payee).verify(name="Alpen Handel GmbH", iban=iban) == PayeeAnswer("NOAP")


def test_every_outcome_is_counted(payee: str) -> None:
    client = vop(payee)
    client.verify(name="ACME Trading GmbH", iban=ACME)
    client.verify(name="Acme Trading", iban=ACME)
    client.verify(name="Zenith", iban=ACME)
    client.verify(name="Zenith", iban=UNKNOWN)
    assert stats(payee)["results"] == {"MTCH": 1, "CMTC": 1, "NMTC": 1, "NOAP": 1}


# --- faults, over real HTTP -----------------------------------------------------------------


def test_timeout_on_a_slow_account(payee: str) -> None:
    config(payee, slow_seconds=1.5)
    with pytest.raises(UpstreamError, match="in time"):
        vop(payee, read_timeout_s=0.3).verify(name="Langsam Versand GmbH", iban=SLOW)
    assert vop(payee).verify(name="Acme Trading GmbH", iban=ACME).result == "MTCH"


def test_call_timeout_is_capped_by_the_caller(payee: str) -> None:
    config(payee, latency_ms=1000)
    with pytest.raises(UpstreamError, match="in time"):
        vop(payee, read_timeout_s=5).verify(name="Acme", iban=ACME, timeout_s=0.2)


@pytest.mark.parametrize(("fail", "code"), [
    ("http_503", "UPSTREAM_UNREACHABLE"),
    ("http_500", "UPSTREAM_UNREACHABLE"),
    ("bad_response", "UPSTREAM_BAD_RESPONSE"),
])
def test_provider_faults_keep_their_codes(payee: str, fail: str, code: str) -> None:
    config(payee, fail=fail)
    with pytest.raises(UpstreamError) as e:
        vop(payee).verify(name="Acme Trading GmbH", iban=ACME)
    assert e.value.code == code and e.value.retryable
    assert stats(payee)["failures"] == {fail: 1}


def test_rejected_request_is_not_retryable(payee: str) -> None:
    with pytest.raises(UpstreamError) as e:
        vop(payee).verify(name="x" * 141, iban=ACME)  # the scheme's names are Max140Text
    assert e.value.code == "UPSTREAM_REJECTED" and not e.value.retryable
    assert "400" in str(e.value)


def test_error_messages_never_hold_the_iban_or_the_name(payee: str) -> None:
    errors: list[UpstreamError] = []
    for knobs in ({"fail": "http_503"}, {"fail": "bad_response"}, {"fail": None,
                                                                    "latency_ms": 800}):
        config(payee, **knobs)
        try:
            vop(payee, read_timeout_s=0.3).verify(name="Acme Trading GmbH", iban=ACME)
        except UpstreamError as e:
            errors.append(e)
    assert len(errors) == 3
    for e in errors:
        assert ACME not in str(e) and "Acme" not in str(e)


# --- the request on the wire, and answers the simulator never gives (responses) -------------

URL = "https://vop.example.test/vop/v1/payee-verifications"


@responses.activate
def test_request_shape() -> None:
    responses.post(URL, json={"partyNameMatch": "MTCH"})
    answer = HttpPayeeVerification("https://vop.example.test/vop/v1/").verify(
        name="ACME GmbH", iban=ACME, bic="COBADEFFXXX")
    assert answer.result == "MTCH"
    sent = responses.calls[0].request
    assert json.loads(sent.body) == {
        "party": {"name": "ACME GmbH"},
        "partyAccount": {"iban": ACME},
        "partyAgent": {"financialInstitutionId": {"bicfi": "COBADEFFXXX"}},
    }
    uuid.UUID(sent.headers["X-Request-ID"])
    assert sent.headers["X-Request-Timestamp"].endswith("Z")
    assert sent.headers["Content-Type"] == "application/json"


@responses.activate
def test_no_party_agent_without_a_bic() -> None:
    responses.post(URL, json={"partyNameMatch": "NOAP"})
    HttpPayeeVerification("https://vop.example.test/vop/v1").verify(name="ACME GmbH", iban=ACME)
    assert "partyAgent" not in json.loads(responses.calls[0].request.body)


@pytest.mark.parametrize("body", [
    {"partyNameMatch": "MAYBE"},
    {"partyNameMatch": "CMTC"},  # a close match must carry matchedName
    {"partyNameMatch": "CMTC", "matchedName": 42},
    {"result": "MTCH"},
    ["MTCH"],
])
@responses.activate
def test_answers_that_are_not_vop_answers(body: object) -> None:
    responses.post(URL, json=body)
    with pytest.raises(UpstreamError) as e:
        HttpPayeeVerification("https://vop.example.test/vop/v1").verify(name="A", iban=ACME)
    assert e.value.fault is Fault.BAD_RESPONSE


@responses.activate
def test_matched_name_is_kept_only_with_a_close_match() -> None:
    responses.post(URL, json={"partyNameMatch": "MTCH", "matchedName": "ACME GmbH"})
    answer = HttpPayeeVerification("https://vop.example.test/vop/v1").verify(name="A", iban=ACME)
    assert answer == PayeeAnswer("MTCH", None)


@responses.activate
def test_unauthorised_is_rejected() -> None:
    responses.post(URL, status=401, json={"code": "UNAUTHORIZED"})
    with pytest.raises(UpstreamError) as e:
        HttpPayeeVerification("https://vop.example.test/vop/v1").verify(name="A", iban=ACME)
    assert e.value.code == "UPSTREAM_REJECTED" and not e.value.retryable


@responses.activate
def test_a_throttle_is_retryable_with_its_wait() -> None:
    responses.post(URL, status=429, json={"code": "TOO_MANY"}, headers={"Retry-After": "4"})
    with pytest.raises(UpstreamError) as e:
        HttpPayeeVerification("https://vop.example.test/vop/v1").verify(name="A", iban=ACME)
    assert e.value.code == "UPSTREAM_THROTTLED" and e.value.retryable
    assert e.value.retry_after_s == 4.0


def test_ready_does_not_call_out() -> None:
    HttpPayeeVerification("https://vop.example.test/vop/v1").ready()


@pytest.mark.parametrize(("name", "bic", "fields"), [
    ("ACME\x01 Trading GmbH", None, {"name"}),
    ("ACME\x00 Trading GmbH", "COBADEFF\x00XX", {"name", "bic"}),
    ("ACME Trading\ud800 GmbH", None, {"name"}),
])
def test_text_no_request_should_carry_is_not_sent(payee: str, name: str, bic: str | None,
                                                  fields: set[str]) -> None:
    """Not a provider fault (no UpstreamError): nothing was sent, the field is named, the name
    is not in the message."""
    with pytest.raises(NotSent) as refused:
        vop(payee).verify(name=name, iban=ACME, bic=bic)
    assert set(refused.value.fields) == fields
    assert not isinstance(refused.value, UpstreamError)
    assert "ACME" not in str(refused.value) and ACME not in str(refused.value)
    assert stats(payee)["calls"] == 0


def test_a_url_no_request_can_go_to_is_not_sent() -> None:
    with pytest.raises(NotSent) as refused:
        vop("htp://127.0.0.1:9").verify(name="ACME Trading GmbH", iban=ACME)
    assert refused.value.fields == {}
