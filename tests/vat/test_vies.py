"""The zeep VIES adapter against the VIES simulator over real HTTP on loopback: its answers and
VIES's fault table (the contract every adapter keeps, timeouts and the like, is in
``tests/contract/test_adapters.py``)."""

from __future__ import annotations

import pytest
import requests

from services.vat.vies import FAULTS, TraderQuery, ViesFault, ZeepVies
from shared.outbound import NotSent
from shared.upstream import Fault, UpstreamError
from tests.conftest import VIES_PATH


@pytest.fixture
def client(vies: str) -> ZeepVies:
    return ZeepVies(vies + VIES_PATH, connect_timeout_s=1, read_timeout_s=3)


def test_valid_test_number(client: ZeepVies) -> None:
    a = client.check(country_code="DE", number="100")
    assert a.valid is True
    assert a.name == "John Doe"
    assert a.address
    assert a.request_date is not None


def test_invalid_test_number(client: ZeepVies) -> None:
    a = client.check(country_code="FR", number="200")
    assert a.valid is False
    assert a.name is None and a.address is None  # "---" is not a name


def test_germany_hides_name_and_address(client: ZeepVies) -> None:
    a = client.check(country_code="DE", number="136695976")
    assert a.valid is True
    assert a.name is None and a.address is None


def test_unknown_number_is_invalid(client: ZeepVies) -> None:
    assert client.check(country_code="FR", number="23334175221").valid is False


def test_approx_with_requester_has_consultation_number(client: ZeepVies) -> None:
    a = client.check(country_code="DE", number="100", trader=TraderQuery(name="John Doe"),
                     requester=("NL", "004495445B01"))
    assert a.valid
    assert a.request_identifier and a.request_identifier.startswith("WAPIAAAA")
    assert a.match == {"name": "valid"}


def test_approx_without_requester_has_none(client: ZeepVies) -> None:
    a = client.check(country_code="ES", number="B83891812",
                     trader=TraderQuery(name="Rodrisa Automoviles", city="Sevilla"))
    assert a.request_identifier is None
    assert a.match == {"name": "valid", "city": "invalid"}
    assert a.trader["city"] == "Madrid"


def test_germany_does_not_process_matches(client: ZeepVies) -> None:
    a = client.check(country_code="DE", number="136695976", trader=TraderQuery(name="X GmbH"))
    assert a.match == {"name": "not_processed"}
    assert a.name is None


@pytest.mark.parametrize(
    ("number", "code"),
    [("201", "INVALID_INPUT"), ("202", "INVALID_REQUESTER_INFO"), ("300", "SERVICE_UNAVAILABLE"),
     ("301", "MS_UNAVAILABLE"), ("302", "TIMEOUT"), ("400", "VAT_BLOCKED"), ("401", "IP_BLOCKED"),
     ("500", "GLOBAL_MAX_CONCURRENT_REQ"), ("501", "GLOBAL_MAX_CONCURRENT_REQ_TIME"),
     ("600", "MS_MAX_CONCURRENT_REQ"), ("601", "MS_MAX_CONCURRENT_REQ_TIME"),
     ("703", "MS_UNAVAILABLE"), ("704", "SERVER_BUSY")],
)
@pytest.mark.parametrize("http_status", [500, 200])
def test_faults_by_code(vies: str, client: ZeepVies, number: str, code: str,
                        http_status: int) -> None:
    requests.patch(vies + "/_sim/config", json={"fault_http_status": http_status}, timeout=5)
    with pytest.raises(ViesFault) as info:
        client.check(country_code="DE", number=number)
    assert info.value.code == code
    assert info.value.fault is FAULTS[code]


def test_gateway_error_page_is_unreachable(client: ZeepVies) -> None:
    """A proxy's HTML 503 is no SOAP answer: unreachable, with VIES's usual code."""
    with pytest.raises(UpstreamError) as info:
        client.check(country_code="DE", number="702")
    assert "503" in str(info.value)
    assert info.value.fault is Fault.UNREACHABLE and info.value.code == "UPSTREAM_UNREACHABLE"


def test_member_state_cap_answers_ms_max_concurrent(vies: str, client: ZeepVies) -> None:
    requests.patch(vies + "/_sim/config", json={"down": ["IT"]}, timeout=5)
    with pytest.raises(ViesFault) as info:
        client.check(country_code="IT", number="00743110157")
    assert info.value.code == "MS_UNAVAILABLE"
    assert info.value.fault is Fault.OUTAGE


def test_wsdl_is_bundled_not_downloaded(vies: str, client: ZeepVies) -> None:
    client.check(country_code="DE", number="100")
    stats = requests.get(vies + "/_sim/stats", timeout=5).json()
    assert stats["calls"] == 1  # one SOAP call and no WSDL fetch


@pytest.mark.parametrize(("trader", "requester", "fields"), [
    (TraderQuery(name="Evil\x01 GmbH"), None, {"trader.name"}),
    (TraderQuery(name="Evil\x00 GmbH", city="Köln\ufffe"), None, {"trader.name", "trader.city"}),
    (TraderQuery(street="Hauptstr.\ud800 1"), None, {"trader.street"}),
    (None, ("NL", "0044\x0295445B01"), {"requester_vat_number"}),
])
def test_text_vies_cannot_carry_is_not_sent(client: ZeepVies, vies: str, trader: TraderQuery,
                                            requester: tuple[str, str] | None,
                                            fields: set[str]) -> None:
    """lxml refuses these while zeep builds the envelope: nothing reaches VIES, and it is not
    an upstream fault (no UpstreamError, so the checker neither retries nor counts it)."""
    with pytest.raises(NotSent) as refused:
        client.check(country_code="DE", number="100", trader=trader, requester=requester)
    assert set(refused.value.fields) == fields
    assert not isinstance(refused.value, UpstreamError)
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 0


def test_a_fault_building_the_envelope_is_not_sent(client: ZeepVies, vies: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever zeep or lxml raise before the transport is reached is ours, not VIES's, even
    when the up-front field check misses it."""
    monkeypatch.setattr("services.vat.vies.unsendable_fields", lambda *a: {})
    with pytest.raises(NotSent) as refused:
        client.check(country_code="DE", number="100", trader=TraderQuery(name="Evil\x01 GmbH"))
    assert refused.value.fields == {}
    assert isinstance(refused.value.__cause__, ValueError)
    assert "Evil" not in str(refused.value)
    assert requests.get(vies + "/_sim/stats", timeout=5).json()["calls"] == 0
    # the next call of the same thread is an ordinary one
    assert client.check(country_code="DE", number="100").valid is True


def test_a_url_no_request_can_go_to_is_not_sent() -> None:
    client = ZeepVies("htp://127.0.0.1:9/checkVatService", connect_timeout_s=1,
                      read_timeout_s=1)
    with pytest.raises(NotSent) as refused:
        client.check(country_code="DE", number="100")
    assert refused.value.fields == {}
