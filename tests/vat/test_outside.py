"""``POST /v1/vat/check`` for numbers VIES does not hold: GB (HMRC), CH (UID register), NO
(Brønnøysund), and prefixes with no online source, against the simulators over real HTTP."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

from services.vat import create_app
from shared.redis_client import Store
from tests.conftest import AUTH, INTERNAL_TOKEN, VIES_PATH
from tests.vat.conftest import configure

URL = "/v1/vat/check"
GB, CH, NO = "GB980780684", "CHE-116.281.704 MWST", "NO912345602MVA"


@pytest.fixture
def make_client(vies: str, hmrc: str, uid: str, brreg: str,
                store: Store) -> Callable[..., FlaskClient]:
    def make(**settings: Any) -> FlaskClient:
        return create_app({
            "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
            "REDIS_STORE": store, "VIES_URL": vies + VIES_PATH, "VIES_STATUS_TTL_S": 0,
            "HMRC_URL": hmrc, "UID_URL": uid + "/V5.0/PublicServices.svc",
            "VAT_NO_BRREG_URL": brreg + "/brreg/enhetsregisteret/api",
            "VIES_DEADLINE_S": 1.5, "VIES_RETRY_BASE_S": 0.05, "VIES_RETRY_MAX_S": 0.1,
            "VAT_SOURCES_READ_TIMEOUT_S": 2.0, "VAT_LOCAL_CACHE_TTL_S": 0, **settings,
        }).test_client()
    return make


def check(client: FlaskClient, **body: object) -> dict[str, Any]:
    resp = client.post(URL, json=body, headers=AUTH)
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def calls(sim: str) -> int:
    return int(requests.get(sim + "/_sim/stats", timeout=5).json()["calls"])


def test_gb_is_checked_with_hmrc_and_keeps_its_consultation_number(
        make_client: Callable[..., FlaskClient], hmrc: str) -> None:
    client = make_client()
    r = check(client, vat_number="gb 980 7806 84")
    assert r["status"] == "valid" and r["source"] == "hmrc"
    assert r["vat_number"] == GB and r["country_code"] == "GB"
    assert r["name"] == "BRITANNIA WIDGETS LTD" and "M1 3HE" in r["address"]
    assert r["consultation_number"] and r["request_date"]  # the sandbox requester VRN
    again = check(client, vat_number=GB)
    assert again["cached"] is True and again["consultation_number"] == r["consultation_number"]
    assert calls(hmrc) == 2  # one token, one lookup


def test_gb_unknown_is_invalid_and_says_so(make_client: Callable[..., FlaskClient]) -> None:
    r = check(make_client(), vat_number="GB980780642")
    assert r["status"] == "invalid" and r["reason"] == "hmrc" and r["source"] == "hmrc"
    assert "no VAT registration" in r["detail"]


def test_gb_without_hmrc_credentials_is_unverifiable_never_invalid(
        make_client: Callable[..., FlaskClient], hmrc: str) -> None:
    r = check(make_client(HMRC_CLIENT_ID=None, HMRC_CLIENT_SECRET=None), vat_number=GB)
    assert r["status"] == "unverifiable" and r["error"] is None
    assert "TRACE30_HMRC_CLIENT_ID" in r["detail"] and "980780684" not in r["detail"]
    assert calls(hmrc) == 0


@pytest.mark.parametrize("number", ["US123456789", "AU51824753556", "JP1234567890123"])
def test_other_prefixes_are_unverifiable_never_invalid(
        make_client: Callable[..., FlaskClient], number: str) -> None:
    r = check(make_client(), vat_number=number)
    assert r["status"] == "unverifiable" and r["format_valid"] is True
    assert r["source"] == "local" and number[:2] in r["detail"]


def test_a_wrong_check_digit_is_still_invalid_locally(
        make_client: Callable[..., FlaskClient], hmrc: str) -> None:
    r = check(make_client(), vat_number="GB980780685")
    assert r["status"] == "invalid" and r["reason"] == "checksum" and r["source"] == "local"
    assert calls(hmrc) == 0


def test_ch_is_checked_with_the_uid_register(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client()
    r = check(client, vat_number=CH)
    assert r["status"] == "valid" and r["source"] == "uid"
    assert r["vat_number"] == "CHE116281704" and r["name"] == "Uhrwerk Manufaktur AG"
    gone = check(client, vat_number="CHE116281710")
    assert gone["status"] == "invalid" and gone["source"] == "uid"


def test_no_is_checked_with_the_mva_register(make_client: Callable[..., FlaskClient]) -> None:
    client = make_client()
    r = check(client, vat_number=NO)
    assert r["status"] == "valid" and r["source"] == "brreg" and r["name"] == "NORDISK FISK AS"
    not_mva = check(client, vat_number="NO912345661MVA")
    assert not_mva["status"] == "invalid" and "VAT register" in not_mva["detail"]


@pytest.mark.parametrize(
    ("number", "sim", "knobs", "code"),
    [
        (GB, "hmrc", {"fail": 429}, "UPSTREAM_THROTTLED"),
        (GB, "hmrc", {"fail": 503}, "UPSTREAM_HTTP_503"),
        (CH, "uid", {"fail": "limit"}, "Request_limit_exceeded"),
        (CH, "uid", {"fail": "malformed"}, "UPSTREAM_BAD_RESPONSE"),
        (NO, "brreg", {"sources": {"brreg": {"fail": 500}}}, "UPSTREAM_HTTP_500"),
        (NO, "brreg", {"sources": {"brreg": {"latency_ms": 2500}}}, "UPSTREAM_TIMEOUT"),
    ],
)
def test_source_faults_are_unavailable_never_invalid_never_cached(
        make_client: Callable[..., FlaskClient], request: pytest.FixtureRequest, number: str,
        sim: str, knobs: dict, code: str) -> None:
    base = request.getfixturevalue(sim)
    client = make_client()
    configure(base, **knobs)
    r = check(client, vat_number=number)
    assert r["status"] == "unavailable", r
    assert r["error"]["code"] == code and r["error"]["retryable"] is True
    assert r["retry_after_s"] > 0
    configure(base, **dict.fromkeys(knobs))
    assert check(client, vat_number=number)["status"] == "valid"  # nothing was cached


def test_a_failing_source_opens_its_circuit(make_client: Callable[..., FlaskClient],
                                            brreg: str) -> None:
    client = make_client(VAT_SOURCES_BREAKER_THRESHOLD=2, VAT_SOURCES_BREAKER_COOLDOWN_S=60)
    configure(brreg, sources={"brreg": {"fail": 503}})
    for _ in range(2):
        assert check(client, vat_number=NO)["error"]["code"] == "UPSTREAM_HTTP_503"
    before = calls(brreg)
    r = check(client, vat_number=NO)
    assert r["status"] == "unavailable" and r["error"]["code"] == "CIRCUIT_OPEN"
    assert calls(brreg) == before  # answered at once, the register not asked
    assert check(client, vat_number=GB)["status"] == "valid"  # other sources unaffected


def test_the_shared_rate_limit_holds_the_uid_registers_quota(
        make_client: Callable[..., FlaskClient], uid: str) -> None:
    # 2 calls a minute: one valid check (ValidateVatNumber + GetByUID) takes both.
    first, second = make_client(UID_RATE_PER_MIN=2), make_client(UID_RATE_PER_MIN=2)
    assert check(first, vat_number=CH)["status"] == "valid"
    r = check(second, vat_number="CHE116281727")  # another process, the same Redis
    assert r["status"] == "unavailable" and r["error"]["code"] == "RATE_LIMITED"
    assert calls(uid) == 2


def test_a_source_is_asked_again_no_sooner_than_its_retry_after(
        make_client: Callable[..., FlaskClient], brreg: str) -> None:
    """The pause after a throttle is at least the Retry-After the source sent (it was once
    drawn between half of it and all of it)."""
    client = make_client(VIES_DEADLINE_S=3.0, VAT_SOURCES_RETRIES=1)
    configure(brreg, sources={"brreg": {"rate_limit": 0, "retry_after_s": 1}})
    started = time.monotonic()
    r = check(client, vat_number=NO)
    assert time.monotonic() - started >= 1.0
    assert r["status"] == "unavailable" and r["attempts"] == 2
    assert r["error"]["code"] == "UPSTREAM_THROTTLED" and r["retry_after_s"] == 1.0


def test_a_retry_after_past_the_deadline_is_answered_at_once(
        make_client: Callable[..., FlaskClient], brreg: str) -> None:
    client = make_client(VIES_DEADLINE_S=3.0, VAT_SOURCES_RETRIES=2)
    configure(brreg, sources={"brreg": {"rate_limit": 0, "retry_after_s": 30}})
    started = time.monotonic()
    r = check(client, vat_number=NO)
    assert time.monotonic() - started < 1.0
    assert r["status"] == "unavailable" and r["attempts"] == 1
    assert r["error"]["retryable"] is True and r["retry_after_s"] == 30.0
