"""The adapters of the VAT sources outside VIES, against their simulators over real HTTP.

Each adapter's answers (valid, invalid) and what its protocol alone does with faults (tokens,
refusals, the UID register's limit); the contract every adapter keeps (timeouts, outages,
throttles, malformed answers) is tested once, in ``tests/contract/test_adapters.py``.
"""

from __future__ import annotations

import time

import pytest
import requests

from services.vat.brreg_mva import BrregMva
from services.vat.hmrc import HmrcVat
from services.vat.uid import UidRegister
from shared.upstream import Fault, UpstreamError
from simulators.hmrc import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET
from tests.vat.conftest import configure

UID_PATH = "/V5.0/PublicServices.svc"
BRREG_PATH = "/brreg/enhetsregisteret/api"


def sim_stats(sim: str) -> dict:
    return requests.get(sim + "/_sim/stats", timeout=5).json()


# -- HMRC --------------------------------------------------------------------------------------


@pytest.fixture
def hmrc_vat(hmrc: str) -> HmrcVat:
    return HmrcVat(hmrc, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, read_timeout_s=2.0)


def test_hmrc_valid_with_name_address_and_consultation_number(hmrc_vat: HmrcVat,
                                                              hmrc: str) -> None:
    plain = hmrc_vat.check("980780684")
    assert plain.valid and plain.name == "BRITANNIA WIDGETS LTD"
    assert plain.address and "M1 3HE" in plain.address
    assert plain.request_date and plain.consultation_number is None
    proof = hmrc_vat.check("980780684", requester="553557861")
    assert proof.valid and proof.consultation_number
    assert proof.consultation_number != hmrc_vat.check(
        "980780684", requester="553557861").consultation_number
    # One token serves every lookup until it nears its expiry.
    assert sim_stats(hmrc)["by_operation"] == {"token": 1, "lookup": 3}


def test_hmrc_unknown_number_is_invalid(hmrc_vat: HmrcVat) -> None:
    answer = hmrc_vat.check("980780642")
    assert not answer.valid
    assert answer.detail and "no VAT registration" in answer.detail


def test_hmrc_renews_a_token_it_refuses(hmrc_vat: HmrcVat, hmrc: str) -> None:
    hmrc_vat._token, hmrc_vat._expires_at = "revoked", time.monotonic() + 3600
    assert hmrc_vat.check("220430231").valid
    assert sim_stats(hmrc)["by_status"] == {"401": 1, "200": 2}  # lookup, token, lookup


@pytest.mark.parametrize(
    ("knobs", "fault", "code"),
    [
        ({"fail": 429}, Fault.THROTTLED, "UPSTREAM_THROTTLED"),
        ({"rate_limit": 0}, Fault.THROTTLED, "UPSTREAM_THROTTLED"),
        ({"fail": 500}, Fault.OUTAGE, "UPSTREAM_HTTP_500"),
        ({"token_fail": 503}, Fault.OUTAGE, "UPSTREAM_HTTP_503"),  # the token endpoint down
    ],
)
def test_hmrc_faults_keep_their_codes(hmrc_vat: HmrcVat, hmrc: str, knobs: dict,
                                      fault: Fault, code: str) -> None:
    configure(hmrc, **knobs)
    with pytest.raises(UpstreamError) as e:
        hmrc_vat.check("980780684", timeout_s=0.5)
    assert (e.value.fault, e.value.code) == (fault, code)


def test_hmrc_refusing_us_needs_attention(hmrc: str) -> None:
    wrong = HmrcVat(hmrc, DEFAULT_CLIENT_ID, "not-the-secret", read_timeout_s=2.0)
    with pytest.raises(UpstreamError) as e:
        wrong.check("980780684")
    assert e.value.fault is Fault.REFUSED and not e.value.retryable
    assert e.value.code == "HMRC_CREDENTIALS_REFUSED" and "secret" not in str(e.value)
    right = HmrcVat(hmrc, DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, read_timeout_s=2.0)
    with pytest.raises(UpstreamError) as e:
        right.check("980780684", requester="980780642")  # not a registered requester
    assert e.value.code == "HMRC_REQUESTER_REFUSED"


def test_hmrc_cannot_check_government_numbers(hmrc_vat: HmrcVat, hmrc: str) -> None:
    with pytest.raises(UpstreamError) as e:
        hmrc_vat.check("GD001")
    assert e.value.fault is Fault.CANNOT_CHECK
    assert sim_stats(hmrc)["calls"] == 0


# -- UID register ------------------------------------------------------------------------------


@pytest.fixture
def uid_register(uid: str) -> UidRegister:
    return UidRegister(uid + UID_PATH, read_timeout_s=2.0)


def test_uid_valid_with_name_and_address(uid_register: UidRegister, uid: str) -> None:
    answer = uid_register.check("116281704")
    assert answer.valid and answer.name == "Uhrwerk Manufaktur AG"
    assert answer.address == "Bahnhofstrasse 12\n8001 Zürich\nCH"
    assert sim_stats(uid)["by_operation"] == {"ValidateVatNumber": 1, "GetByUID": 1}


def test_uid_deregistered_and_unknown_numbers_are_invalid(uid_register: UidRegister,
                                                          uid: str) -> None:
    for number in ("116281710", "116281733"):  # left the VAT register; not in the register
        answer = uid_register.check(number)
        assert not answer.valid and answer.detail
    assert sim_stats(uid)["by_operation"] == {"ValidateVatNumber": 2}


def test_uid_an_undocumented_soap_fault_is_an_outage(uid_register: UidRegister,
                                                     uid: str) -> None:
    configure(uid, fail="http_500")  # a SOAP fault with HTTP 500 whose code is in no table
    with pytest.raises(UpstreamError) as e:
        uid_register.check("116281704", timeout_s=0.5)
    assert e.value.fault is Fault.OUTAGE and e.value.retryable


def test_uid_anonymous_limit_is_a_throttle(uid_register: UidRegister, uid: str) -> None:
    configure(uid, rate_limit_per_min=1)
    assert not uid_register.check("116281733").valid  # the one call of the minute
    with pytest.raises(UpstreamError) as e:
        uid_register.check("116281704")
    assert e.value.fault is Fault.THROTTLED and e.value.code == "Request_limit_exceeded"


def test_uid_details_failing_keeps_the_answer_valid(uid_register: UidRegister,
                                                    uid: str) -> None:
    configure(uid, rate_limit_per_min=1)  # ValidateVatNumber passes, GetByUID is refused
    answer = uid_register.check("116281704")
    assert answer.valid and answer.name is None


# -- Brønnøysund, Merverdiavgiftsregisteret ----------------------------------------------------


@pytest.fixture
def brreg_mva(brreg: str) -> BrregMva:
    return BrregMva(brreg + BRREG_PATH, read_timeout_s=2.0)


def test_brreg_vat_registered_entity_is_valid(brreg_mva: BrregMva) -> None:
    answer = brreg_mva.check("912345602")
    assert answer.valid and answer.name == "NORDISK FISK AS"
    assert answer.address == "Bryggen 5\n5003 BERGEN\nNorge"


@pytest.mark.parametrize(
    ("orgnr", "words"),
    [
        ("912345661", "not registered in the VAT register"),  # a sole trader outside MVA
        ("912345645", "deleted"),
        ("912345653", "removed"),  # 410 Gone
        ("912345696", "no entity"),  # 404
    ],
)
def test_brreg_other_entities_are_invalid(brreg_mva: BrregMva, orgnr: str, words: str) -> None:
    answer = brreg_mva.check(orgnr)
    assert not answer.valid
    assert answer.detail and words in answer.detail
