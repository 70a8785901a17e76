"""The VIES REST adapter and the fallback to it, against the VIES simulator over real HTTP.

When the SOAP front end fails with an outage for a member state, the check asks the REST API
once within the same deadline and says which front end answered (``source``); VIES's
check-status opens a member state's circuit before a check pays for a failing call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask import Flask
from flask.testing import FlaskClient

from services.vat import create_app
from services.vat.vies import TraderQuery
from services.vat.vies_rest import RestVies
from shared.redis_client import Store
from shared.upstream import Fault, UpstreamError
from tests.conftest import AUTH, INTERNAL_TOKEN, VIES_PATH
from tests.vat.conftest import REST_PATH

URL = "/v1/vat/check"
FR = "FR19812345676"  # SAS BOULANGERIE MARTIN in the simulator's register


def configure(vies: str, **knobs: object) -> None:
    requests.patch(vies + "/_sim/config", json=knobs, timeout=5).raise_for_status()


def stats(vies: str) -> dict[str, Any]:
    return requests.get(vies + "/_sim/stats", timeout=5).json()


# -- the adapter -------------------------------------------------------------------------------


@pytest.fixture
def rest(vies: str) -> RestVies:
    return RestVies(vies + REST_PATH, read_timeout_s=2.0)


def test_rest_valid_with_consultation_number_and_match_codes(rest: RestVies) -> None:
    a = rest.check(country_code="FR", number="19812345676",
                   trader=TraderQuery(name="sas boulangerie martin", city="Lyon"),
                   requester=("NL", "820246633B01"))
    assert a.valid and a.name == "SAS BOULANGERIE MARTIN"
    assert a.request_identifier and a.request_identifier.startswith("WAPIAAAA")
    assert a.request_date is not None


def test_rest_invalid_number(rest: RestVies) -> None:
    a = rest.check(country_code="DE", number="200")
    assert not a.valid and a.name is None


@pytest.mark.parametrize(
    ("number", "knobs", "fault", "code"),
    [
        ("301", {"fault_http_status": 200}, Fault.OUTAGE, "MS_UNAVAILABLE"),  # a fault with 200
        ("201", {}, Fault.INVALID, "INVALID_INPUT"),
        ("702", {}, Fault.UNREACHABLE, "UPSTREAM_UNREACHABLE"),  # a gateway's HTML 503
        ("100", {"front_ends_down": ["rest"]}, Fault.OUTAGE, "SERVICE_UNAVAILABLE"),
    ],
)
def test_rest_faults_are_classified_like_soap(rest: RestVies, vies: str, number: str,
                                              knobs: dict, fault: Fault, code: str) -> None:
    configure(vies, **knobs)
    with pytest.raises(UpstreamError) as e:
        rest.check(country_code="DE", number=number, timeout_s=0.5)
    assert (e.value.fault, e.value.code) == (fault, code)


def test_rest_check_status(rest: RestVies, vies: str) -> None:
    configure(vies, down=["DE"])
    status = rest.status(timeout_s=2)
    assert status["DE"] == "Unavailable" and status["FR"] == "Available"
    assert len(status) == 28


# -- the fallback through the API --------------------------------------------------------------


@pytest.fixture
def make_client(vies: str, store: Store) -> Callable[..., FlaskClient]:
    def make(**settings: Any) -> FlaskClient:
        app: Flask = create_app({
            "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
            "REDIS_STORE": store, "VIES_URL": vies + VIES_PATH, "VIES_REST_URL": vies + REST_PATH,
            "VIES_DEADLINE_S": 1.5, "VIES_RETRY_BASE_S": 0.05, "VIES_RETRY_MAX_S": 0.1,
            "VIES_READ_TIMEOUT_S": 2.0, "VIES_STATUS_TTL_S": 0, "VAT_LOCAL_CACHE_TTL_S": 0,
            **settings,
        })
        return app.test_client()
    return make


def check(client: FlaskClient, **body: object) -> dict[str, Any]:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def test_soap_up_answers_from_soap(make_client: Callable[..., FlaskClient], vies: str) -> None:
    r = check(make_client(), vat_number=FR)
    assert r["status"] == "valid" and r["source"] == "vies-soap"
    assert stats(vies)["by_operation"] == {"checkVatApprox": 1}


def test_soap_down_rest_answers(make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, front_ends_down=["soap"])
    r = check(make_client(), vat_number=FR, trader={"name": "Boulangerie Martin"})
    assert r["status"] == "valid" and r["source"] == "vies-rest"
    assert r["name"] == "SAS BOULANGERIE MARTIN"
    assert r["consultation_number"]  # the sandbox requester is sent to REST too
    assert stats(vies)["by_operation"]["rest"] == 1  # REST asked once
    # A definitive REST answer is cached like a SOAP one.
    again = check(make_client(), vat_number=FR, trader={"name": "Boulangerie Martin"})
    assert again["cached"] is True and again["source"] == "vies-rest"


def test_rest_invalid_is_invalid(make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, front_ends_down=["soap"])
    r = check(make_client(), vat_number="DE200")
    assert r["status"] == "invalid" and r["source"] == "vies-rest"


def test_both_front_ends_down_is_unavailable_never_invalid(
        make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, front_ends_down=["soap", "rest"])
    client = make_client()
    r = check(client, vat_number=FR)
    assert r["status"] == "unavailable" and r["error"]["retryable"] is True
    assert r["source"] == "vies-soap" and r["error"]["code"] == "SERVICE_UNAVAILABLE"
    assert stats(vies)["by_operation"]["rest"] == 1, stats(vies)  # one REST try
    configure(vies, front_ends_down=None)
    assert check(client, vat_number=FR)["cached"] is False  # the fault was not cached


def test_throttle_is_not_an_outage(make_client: Callable[..., FlaskClient], vies: str) -> None:
    r = check(make_client(), vat_number="DE600")  # MS_MAX_CONCURRENT_REQ on SOAP
    assert r["status"] == "unavailable" and r["error"]["code"] == "MS_MAX_CONCURRENT_REQ"
    assert "rest" not in stats(vies)["by_operation"]


def test_fallback_can_be_turned_off(make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, front_ends_down=["soap"])
    r = check(make_client(VIES_REST_FALLBACK=False), vat_number=FR)
    assert r["status"] == "unavailable" and r["source"] == "vies-soap"
    assert "rest" not in stats(vies)["by_operation"]


def test_open_soap_circuit_still_answers_through_rest(
        make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, front_ends_down=["soap"])
    client = make_client(VIES_BREAKER_THRESHOLD=1, VIES_BREAKER_COOLDOWN_S=60)
    first = check(client, vat_number=FR, max_age_s=0)  # opens the SOAP circuit of FR
    assert first["source"] == "vies-rest"
    soap_calls = stats(vies)["calls"] - stats(vies)["by_operation"]["rest"]
    second = check(client, vat_number=FR, max_age_s=0)
    assert second["status"] == "valid" and second["source"] == "vies-rest"
    assert stats(vies)["calls"] - stats(vies)["by_operation"]["rest"] == soap_calls


def test_check_status_opens_the_circuit_before_a_failing_call(
        make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, down=["DE"])
    client = make_client(VIES_STATUS_TTL_S=60)
    r = check(client, vat_number="DE136695976")
    assert r["status"] == "unavailable" and r["error"]["code"] == "CIRCUIT_OPEN"
    assert "check-status" in r["error"]["message"].lower() or "CHECK_STATUS" in \
        r["error"]["message"]
    s = stats(vies)
    assert s["by_country"].get("DE", 0) == 0  # neither front end was asked about DE
    assert s["by_operation"] == {"check-status": 1}
    fr = check(client, vat_number=FR)  # other states are asked as usual
    assert fr["status"] == "valid" and fr["source"] == "vies-soap"
    assert stats(vies)["by_operation"]["check-status"] == 1  # read once per TTL


def test_unreadable_check_status_does_not_stop_checks(
        make_client: Callable[..., FlaskClient], vies: str) -> None:
    configure(vies, front_ends_down=["rest"])  # check-status is served by the REST front end
    r = check(make_client(VIES_STATUS_TTL_S=60), vat_number=FR)
    assert r["status"] == "valid" and r["source"] == "vies-soap"
