"""Tests of the payee-verification simulator (simulators.payee)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from schwifty import IBAN

from simulators.payee import VOP_PATH, config_from_env, create_app
from simulators.payee.accounts import load_accounts
from simulators.payee.state import ConfigError

REPO = Path(__file__).resolve().parents[2]
ACCOUNTS = REPO / "simulators" / "payee" / "accounts.json"
ACME = "DE89370400440532013000"  # Acme Trading GmbH


@pytest.fixture
def client() -> FlaskClient:
    return create_app({}).test_client()


def ask(client: FlaskClient, name: str, iban: str = ACME, **headers: str) -> tuple[int, dict]:
    resp = client.post(VOP_PATH, json={"party": {"name": name}, "partyAccount": {"iban": iban}},
                       headers={"X-Request-ID": str(uuid.uuid4()), **headers})
    return resp.status_code, resp.get_json(silent=True)


# --- the VoP endpoint -----------------------------------------------------------------------


@pytest.mark.parametrize(("name", "iban", "answer"), [
    ("Acme Trading GmbH", ACME, {"partyNameMatch": "MTCH"}),
    ("acme  trading gmbh.", ACME, {"partyNameMatch": "MTCH"}),
    ("Muller Gartenbau GmbH", "DE02120300000000202051", {"partyNameMatch": "MTCH"}),
    ("Acme Trading", ACME, {"partyNameMatch": "CMTC", "matchedName": "Acme Trading GmbH"}),
    ("Zenith Logistics BV", ACME, {"partyNameMatch": "NMTC"}),
    ("Alpen Handel GmbH", "AT611904300234573201", {"partyNameMatch": "NOAP"}),
    ("Anyone", "NL02ABNA0123456789", {"partyNameMatch": "NOAP"}),
])
def test_answers(client: FlaskClient, name: str, iban: str, answer: dict) -> None:
    assert ask(client, name, iban) == (200, answer)


def test_headers_are_echoed_and_stamped(client: FlaskClient) -> None:
    rid = str(uuid.uuid4())
    resp = client.post(VOP_PATH, json={"party": {"name": "A"}, "partyAccount": {"iban": ACME}},
                       headers={"X-Request-ID": rid, "X-Request-Timestamp": "2025-10-09T12:00Z"})
    assert resp.headers["X-Request-ID"] == rid
    assert resp.headers["X-Response-Timestamp"].endswith("Z")


def test_party_agent_is_accepted(client: FlaskClient) -> None:
    resp = client.post(VOP_PATH, headers={"X-Request-ID": "r-1"}, json={
        "party": {"name": "Acme Trading GmbH"}, "partyAccount": {"iban": ACME},
        "partyAgent": {"financialInstitutionId": {"bicfi": "COBADEFFXXX"}}})
    assert resp.get_json() == {"partyNameMatch": "MTCH"}


@pytest.mark.parametrize(("body", "headers", "field"), [
    ({"party": {"name": "A"}, "partyAccount": {"iban": ACME}}, {}, "X-Request-ID"),
    ({"partyAccount": {"iban": ACME}}, {"X-Request-ID": "r"}, "party.name"),
    ({"party": {"name": ""}, "partyAccount": {"iban": ACME}}, {"X-Request-ID": "r"},
     "party.name"),
    ({"party": {"name": "x" * 141}, "partyAccount": {"iban": ACME}}, {"X-Request-ID": "r"},
     "party.name"),
    ({"party": {"name": "A"}, "partyAccount": {"iban": "DE89 3704 0044 0532 0130 00"}},
     {"X-Request-ID": "r"}, "partyAccount.iban"),
    ({"party": {"name": "A"}}, {"X-Request-ID": "r"}, "partyAccount.iban"),
    ({"party": {"name": "A"}, "partyAccount": {"iban": ACME}, "partyAgent": "COBADEFF"},
     {"X-Request-ID": "r"}, "partyAgent"),
    (["not", "an", "object"], {"X-Request-ID": "r"}, "JSON object"),
])
def test_malformed_requests(client: FlaskClient, body: object, headers: dict,
                            field: str) -> None:
    resp = client.post(VOP_PATH, json=body, headers=headers)
    assert resp.status_code == 400
    data = resp.get_json()
    assert data["code"] == "FORMAT_ERROR" and field in data["message"]
    assert ACME not in resp.get_data(as_text=True) and "3704" not in resp.get_data(as_text=True)


def test_too_large_body(client: FlaskClient) -> None:
    resp = client.post(VOP_PATH, data=b"{" + b" " * 20000 + b"}",
                       headers={"X-Request-ID": "r", "Content-Type": "application/json"})
    assert resp.status_code == 413


# --- knobs ----------------------------------------------------------------------------------


def test_config_get_patch_and_reset(client: FlaskClient) -> None:
    assert client.get("/_sim/config").get_json() == {"latency_ms": 0, "fail": None,
                                                     "slow_seconds": 30.0}
    patched = client.patch("/_sim/config", json={"latency_ms": 5, "fail": "http_503"})
    assert patched.get_json() == {"latency_ms": 5, "fail": "http_503", "slow_seconds": 30.0}
    restored = client.patch("/_sim/config", json={"latency_ms": None, "fail": None})
    assert restored.get_json()["fail"] is None and restored.get_json()["latency_ms"] == 0


@pytest.mark.parametrize("patch", [{"nope": 1}, {"latency_ms": -1}, {"latency_ms": True},
                                   {"fail": "sometimes"}, {"slow_seconds": "long"}])
def test_bad_config_is_refused(client: FlaskClient, patch: dict) -> None:
    resp = client.patch("/_sim/config", json=patch)
    assert resp.status_code == 400 and resp.get_json()["error"]


def test_config_must_be_an_object(client: FlaskClient) -> None:
    assert client.patch("/_sim/config", json=[1]).status_code == 400


def test_create_app_refuses_bad_knobs() -> None:
    with pytest.raises(ConfigError):
        create_app({"fail": "always"})


@pytest.mark.parametrize(("fail", "status"), [("http_500", 500), ("http_503", 503),
                                              ("bad_response", 200)])
def test_fail_modes(client: FlaskClient, fail: str, status: int) -> None:
    client.patch("/_sim/config", json={"fail": fail})
    resp = client.post(VOP_PATH, json={"party": {"name": "A"}, "partyAccount": {"iban": ACME}},
                       headers={"X-Request-ID": "r"})
    assert resp.status_code == status
    if fail == "bad_response":
        assert resp.content_type.startswith("text/html")
    assert client.get("/_sim/stats").get_json()["failures"] == {fail: 1}


def test_latency(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"latency_ms": 200})
    started = time.monotonic()
    ask(client, "Acme Trading GmbH")
    assert time.monotonic() - started >= 0.2


def test_slow_account(client: FlaskClient) -> None:
    client.patch("/_sim/config", json={"slow_seconds": 0.3})
    started = time.monotonic()
    assert ask(client, "Langsam Versand GmbH", "DE02500105170137075030")[1] == {
        "partyNameMatch": "MTCH"}
    assert time.monotonic() - started >= 0.3
    started = time.monotonic()
    ask(client, "Acme Trading GmbH")
    assert time.monotonic() - started < 0.3


def test_stats_and_reset(client: FlaskClient) -> None:
    ask(client, "Acme Trading GmbH")
    ask(client, "Nobody", "NL02ABNA0123456789")
    client.post(VOP_PATH, json={}, headers={"X-Request-ID": "r"})
    stats = client.get("/_sim/stats").get_json()
    assert stats == {"calls": 3, "results": {"MTCH": 1, "NOAP": 1}, "failures": {},
                     "rejected": 1, "in_flight": 0, "max_in_flight": 1}
    assert ACME not in json.dumps(stats)
    assert client.post("/_sim/reset").get_json()["calls"] == 0


def test_health(client: FlaskClient) -> None:
    assert client.get("/_sim/health").get_json() == {"status": "ok"}


def test_config_from_env() -> None:
    assert config_from_env({"TRACE30_SIM_PAYEE_LATENCY_MS": "10",
                            "TRACE30_SIM_PAYEE_FAIL": "http_503",
                            "TRACE30_SIM_PAYEE_SLOW_SECONDS": "2"}) == {
        "latency_ms": 10.0, "fail": "http_503", "slow_seconds": 2.0}
    assert config_from_env({}) == {}


# --- the demo accounts ----------------------------------------------------------------------


def test_every_demo_iban_is_valid() -> None:
    accounts = load_accounts(ACCOUNTS)
    assert len(accounts) >= 8
    for iban in accounts:
        assert IBAN(iban, validate_bban=True).is_valid
    assert {a.behaviour for a in accounts.values()} == {"normal", "noap", "slow"}


@pytest.mark.parametrize("record", [
    {"iban": "DE89 3704", "name": "A"},
    {"iban": ACME, "name": ""},
    {"iban": ACME, "name": "A", "behaviour": "grumpy"},
    {"iban": ACME, "name": "A", "extra": 1},
])
def test_bad_accounts_file(tmp_path: Path, record: dict) -> None:
    path = tmp_path / "accounts.json"
    path.write_text(json.dumps({"accounts": [record]}), encoding="utf-8")
    with pytest.raises(ValueError):
        load_accounts(path)


# --- as a process ---------------------------------------------------------------------------


def test_python_m_serves_and_stops_cleanly() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "simulators.payee", "--host", "127.0.0.1", "--port", "0",
         "--latency-ms", "1"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("payee-simulator listening on http://127.0.0.1:")
        base = line.rsplit(" ", 1)[1]
        assert requests.get(base + "/_sim/config", timeout=5).json()["latency_ms"] == 1
        answer = requests.post(base + "/vop/v1/payee-verifications", timeout=5,
                               headers={"X-Request-ID": str(uuid.uuid4())},
                               json={"party": {"name": "Acme Trading"},
                                     "partyAccount": {"iban": ACME}})
        assert answer.json()["partyNameMatch"] == "CMTC"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        output = proc.stdout.read()
        assert "POST /vop/v1/payee-verifications" in output  # werkzeug logs the request line
        assert ACME not in output and "Acme" not in output  # never the body
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def test_bad_command_line_exits_with_usage() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "simulators.payee", "--fail", "sometimes"],
        cwd=REPO, capture_output=True, text=True, timeout=30, check=False,
    )
    assert result.returncode == 2 and "invalid choice" in result.stderr

