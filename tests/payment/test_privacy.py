"""The full IBAN never reaches logs, Redis keys, Redis values, error bodies or the simulator's
counters. The tests send IBANs through every path, capture every log record and scan Redis."""

from __future__ import annotations

import json
import logging

import pytest
import requests
from flask.testing import FlaskClient
from schwifty import IBAN

from shared.logs import JsonFormatter
from shared.redis_client import Store
from tests.conftest import AUTH

URL = "/v1/payment/check"
IBANS = [
    "DE89370400440532013000",  # valid, known to the simulated bank
    "DE02120300000000202051",  # valid, known to the simulated bank
    "FR1420041010050500013M02606",
    "DE88370400440532013000",  # checksum
    "DE08370400440532013100",  # national check digits
    "GB29NWBK60161331926819",
]


def forbidden(iban: str) -> list[str]:
    """The IBAN as typed or stored, its BBAN, and (when valid) the account number."""
    spaced = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
    out = [iban, iban.lower(), spaced, iban[4:]]
    parsed = IBAN(iban, allow_invalid=True)
    if len(parsed.account_code) >= 8:
        out.append(parsed.account_code)
    return out


def assert_clean(text: str, what: str) -> None:
    for iban in IBANS:
        for needle in forbidden(iban):
            assert needle not in text, f"{what} holds {needle[:4]}...: {text[:300]}"


def exercise(client: FlaskClient, payee: str) -> list[str]:
    """Send the IBANs down every path; return every response body."""
    bodies: list[str] = []

    def post(**kw: object) -> None:
        kw.setdefault("headers", AUTH)
        resp = client.post(URL, **kw)  # type: ignore[arg-type]
        bodies.append(resp.get_data(as_text=True))

    for iban in IBANS:
        spaced = " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))
        post(json={"iban": "IBAN " + spaced.lower(), "bic": "COBADEFF",
                   "account_holder": "Acme Trading", "trader_name": "Acme Trading GmbH",
                   "verify_payee": True})
        post(json={"iban": iban, "account_holder": "Acme Trading", "verify_payee": True})  # cache
        post(json={"iban": "D\u0415" + iban[2:]})  # look-alike letter
        post(json={"iban": iban, "unknown": 1})  # 400
        post(json={iban: "as a field name", "iban": "x"})  # 400
        post(json={"iban": iban + "0" * 50})  # 400: too long
        post(data=iban, headers={**AUTH, "Content-Type": "application/json"})  # 400: not JSON
    requests.patch(payee + "/_sim/config", json={"latency_ms": 1500}, timeout=5)
    post(json={"iban": IBANS[1], "account_holder": "Other Name GmbH", "verify_payee": True})
    requests.patch(payee + "/_sim/config", json={"latency_ms": None, "fail": "http_503"},
                   timeout=5)
    post(json={"iban": IBANS[1], "trader_name": "Third Name GmbH", "verify_payee": True})
    requests.patch(payee + "/_sim/config", json={"fail": "bad_response"}, timeout=5)
    post(json={"iban": IBANS[1], "trader_name": "Fourth Name GmbH", "verify_payee": True})
    return bodies


@pytest.fixture
def all_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)  # every logger, every level (urllib3's too)
    return caplog


def test_logs_never_hold_the_iban(client: FlaskClient, payee: str,
                                  all_logs: pytest.LogCaptureFixture) -> None:
    exercise(client, payee)
    records = all_logs.records
    assert len(records) > 50
    assert any(r.getMessage() == "payment check" for r in records)
    formatter = JsonFormatter("payment")
    for record in records:
        assert_clean(formatter.format(record), f"log record {record.name}")
        assert_clean(repr(vars(record)), f"log record {record.name} attributes")
    assert_clean(all_logs.text, "captured log text")
    masked = [r.__dict__.get("iban") for r in records if r.getMessage() == "payment check"]
    assert "DE****3000" in masked


def test_response_and_error_bodies_never_hold_the_iban(client: FlaskClient, payee: str) -> None:
    bodies = exercise(client, payee)
    problems = [b for b in bodies if '"status": 400' in b or '"status":400' in b]
    assert len(problems) == 4 * len(IBANS)
    for body in bodies:
        assert_clean(body, "response body")
        data = json.loads(body)
        if "iban_masked" in data:
            assert data["iban_masked"].count("*") == 4


def test_redis_keys_and_values_never_hold_the_iban(client: FlaskClient, payee: str,
                                                   store: Store) -> None:
    exercise(client, payee)
    keys = list(store.client.scan_iter(match=store.prefix + "*", count=1000))
    assert any(":payment:payee:" in k for k in keys), keys  # answers were cached
    assert any(":breaker:payee:" in k for k in keys), keys  # the breaker counted faults
    for key in keys:
        assert_clean(key, "Redis key")
        kind = store.client.type(key)
        if kind == "string":
            value = store.client.get(key)
        elif kind == "hash":
            value = store.client.hgetall(key)
        elif kind == "zset":
            value = store.client.zrange(key, 0, -1, withscores=True)
        elif kind == "list":
            value = store.client.lrange(key, 0, -1)
        elif kind == "set":
            value = store.client.smembers(key)
        else:
            raise AssertionError(f"unexpected Redis type {kind}")
        assert_clean(repr(value), f"Redis value of {key}")


def test_payee_cache_value_holds_only_the_answer(client: FlaskClient, payee: str,
                                                 store: Store) -> None:
    client.post(URL, headers=AUTH, json={"iban": IBANS[0], "account_holder": "Acme Trading",
                                         "verify_payee": True})
    [key] = list(store.client.scan_iter(match=store.prefix + "payment:payee:*"))
    assert json.loads(store.client.get(key)).keys() == {"stored_at", "result", "matched_name"}


def test_simulator_counters_never_hold_the_iban(client: FlaskClient, payee: str) -> None:
    exercise(client, payee)
    stats = requests.get(payee + "/_sim/stats", timeout=5).text
    assert json.loads(stats)["calls"] > 0
    assert_clean(stats, "simulator stats")
    assert_clean(requests.get(payee + "/_sim/config", timeout=5).text, "simulator config")
