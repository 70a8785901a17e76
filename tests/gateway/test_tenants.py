"""Tenants: two marketplaces on one gateway never see each other's traders.

Two tenants, ``shop-a`` and ``shop-b``, each with a marketplace client (onboarding, its own
webhook) and a staff client (ops, batch); ``shop-a`` also has a second brand's client. Every
verification goes through the real services and simulators of the session's suite.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import access, create_app, shutdown
from services.gateway.evidence import EvidenceLog
from shared.config import load
from shared.errors import ConfigError
from tests.gateway.test_dashboard import HTML, csrf_of, page, sign_in
from tests.gateway.test_flow import GOOD, submission
from tests.gateway.webhook_receiver import WebhookReceiver

TRADER = GOOD["trader_id"]
KEYS = {name: f"tenants-test-{name}-key" for name in
        ("a-shop", "a-brand", "a-staff", "b-shop", "b-staff")}
HOOK_SECRET = "tenants-test-webhook-secret"  # noqa: S105 (a test value)


def bearer(name: str, **headers: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name]}", **headers}


def api_keys(hook_a: str | None = None, hook_b: str | None = None) -> str:
    return json.dumps([
        {"id": "a-shop", "key": KEYS["a-shop"], "scopes": ["onboarding"], "tenant": "shop-a",
         "webhook_url": hook_a, "webhook_secret": HOOK_SECRET},
        {"id": "a-brand", "key": KEYS["a-brand"], "scopes": ["onboarding"], "tenant": "shop-a"},
        {"id": "a-staff", "key": KEYS["a-staff"], "scopes": ["ops", "batch"], "tenant": "shop-a"},
        {"id": "b-shop", "key": KEYS["b-shop"], "scopes": ["onboarding"], "tenant": "shop-b",
         "webhook_url": hook_b, "webhook_secret": HOOK_SECRET},
        {"id": "b-staff", "key": KEYS["b-staff"], "scopes": ["ops", "batch"], "tenant": "shop-b"},
    ])


@pytest.fixture
def app(gateway_config: dict) -> Iterator[Flask]:
    app = create_app({**gateway_config, "GATEWAY_API_KEYS": api_keys()})
    yield app
    shutdown(app)


@pytest.fixture
def http(app: Flask) -> FlaskClient:
    return app.test_client()


def verify(http: FlaskClient, who: str, sub: dict[str, Any]) -> dict[str, Any]:
    resp = http.post("/v1/verifications", json=sub, headers=bearer(who, Prefer="wait=15"))
    assert resp.status_code == 200, resp.get_json()
    return resp.get_json()


def log_of(app: Flask) -> EvidenceLog:
    return app.extensions["trace30.gateway"].evidence


def assert_404(resp: Any) -> None:
    assert resp.status_code == 404, resp.get_data(as_text=True)[:300]
    assert resp.mimetype == "application/problem+json"


def test_a_client_belongs_to_a_tenant_named_in_its_key_entry() -> None:
    settings = load({}, {"SANDBOX": True, "GATEWAY_API_KEYS": json.dumps([
        {"id": "x", "key": "k1", "scopes": ["onboarding"], "tenant": "shop-a"},
        {"id": "y", "key": "k2", "scopes": ["onboarding"]},
    ])})
    clients = access.load_clients(settings["GATEWAY_API_KEYS"], sandbox=True,
                                  sandbox_webhook_url=None)
    assert [(c.id, c.tenant) for c in clients] == [
        ("x", "shop-a"), ("y", "default"), ("sandbox", "default")]
    for bad in ("Shop A", "", "a" * 64, "-shop", "shop:a", 7):
        with pytest.raises(ConfigError, match=r"GATEWAY_API_KEYS.*'tenant' must be"):
            load({}, {"GATEWAY_API_KEYS": json.dumps([{"id": "x", "key": "k", "tenant": bad}])})


def test_the_same_trader_id_in_two_tenants_is_two_traders(http: FlaskClient) -> None:
    a = verify(http, "a-shop", GOOD)
    b = verify(http, "b-shop", GOOD)
    # the same data in another tenant is verified again, not answered from shop-a's cache
    assert b["cached"] is False and b["id"] != a["id"] and b["fingerprint"] != a["fingerprint"]
    # a second brand of shop-a shares shop-a's traders and cached verdicts
    brand = verify(http, "a-brand", GOOD)
    assert brand["cached"] is True and brand["id"] == a["id"]
    for who, expected in (("a-staff", a["id"]), ("b-staff", b["id"]), ("a-brand", a["id"])):
        current = http.get(f"/v1/traders/{TRADER}", headers=bearer(who)).get_json()
        assert current["id"] == expected, who
    history = http.get(f"/v1/traders/{TRADER}/history", headers=bearer("b-staff")).get_json()
    assert [v["id"] for v in history["verifications"]] == [b["id"]]
    # shop-b's trader verified, shop-a's not flagged as sharing an account with it
    assert "ACCOUNT_SHARED" not in {r["code"] for r in b["reasons"]}


def test_another_tenants_verification_and_trader_are_404(app: Flask, http: FlaskClient) -> None:
    a = verify(http, "a-shop", submission(trader_id="only-in-a"))
    log = log_of(app)
    url = "/v1/traders/only-in-a"
    assert_404(http.get(f"/v1/verifications/{a['id']}", headers=bearer("b-shop")))
    assert_404(http.get(f"/v1/verifications/{a['id']}", headers=bearer("b-staff")))
    assert_404(http.get(url, headers=bearer("b-shop")))
    assert_404(http.get(f"{url}/history", headers=bearer("b-staff")))
    assert_404(http.post(f"{url}/reverify", headers=bearer("b-staff", Prefer="wait=15")))
    assert_404(http.post(f"{url}/end", headers=bearer("b-staff")))
    assert_404(http.post(f"{url}/end", headers=bearer("b-shop")))
    # the same answer as for a trader nobody has: existence is not revealed
    nobody = http.get("/v1/traders/nobody-at-all", headers=bearer("b-shop")).get_json()
    other = http.get(url, headers=bearer("b-shop")).get_json()
    assert {k: v for k, v in other.items() if k not in ("detail", "instance", "request_id")} \
        == {k: v for k, v in nobody.items() if k not in ("detail", "instance", "request_id")}
    # and nothing happened to shop-a's trader
    assert [r.id for r in log.history("only-in-a", tenant="shop-a")] == [a["id"]]
    assert log.actions("only-in-a", tenant="shop-a") == []
    assert log.trader_summaries(tenant="shop-a", trader_id="only-in-a")[0].ended_at is None
    assert log.trader_summaries(tenant="shop-b") == []
    mine = http.get(f"/v1/verifications/{a['id']}", headers=bearer("a-staff"))
    assert mine.status_code == 200 and mine.get_json()["id"] == a["id"]


def test_linkage_never_crosses_tenants(http: FlaskClient) -> None:
    """A seller shop-a rejected, coming to shop-b with the same VAT number and registration,
    is not flagged in shop-b (shop-a's verdicts are not shop-b's to see); at shop-a it is."""
    rejected = verify(http, "a-shop", submission(trader_id="banned-shop",
                                                 self_certification={"accepted": False}))
    assert rejected["verdict"] == "rejected"
    back = submission(trader_id="fresh-start", name="Boulangerie du Four SAS")
    at_b = verify(http, "b-shop", back)
    codes_b = {r["code"] for r in at_b["reasons"]}
    assert not codes_b & {"LINKED_TO_REJECTED_TRADER", "VAT_NUMBER_SHARED",
                          "REGISTRATION_SHARED", "ACCOUNT_SHARED"}, codes_b
    assert at_b["evidence"]["linked_traders"] == []
    at_a = verify(http, "a-shop", back)
    codes_a = {r["code"] for r in at_a["reasons"]}
    assert {"LINKED_TO_REJECTED_TRADER", "VAT_NUMBER_SHARED", "REGISTRATION_SHARED",
            "ACCOUNT_SHARED"} <= codes_a
    assert at_a["verdict"] == "needs_review"
    assert [t["trader_id"] for t in at_a["evidence"]["linked_traders"]] == ["banned-shop"]


def test_webhooks_go_to_the_client_of_the_traders_tenant(gateway_config: dict) -> None:
    with WebhookReceiver() as hook_a, WebhookReceiver() as hook_b:
        app = create_app({**gateway_config,
                          "GATEWAY_API_KEYS": api_keys(hook_a.url, hook_b.url)})
        http = app.test_client()
        try:
            b = verify(http, "b-shop", GOOD)
            a = verify(http, "a-shop", GOOD)  # the same trader id, later, in shop-a
            # shop-b's staff re-verify "their" trader without waiting: the verdict goes to
            # shop-b's marketplace by webhook, and shop-a's trader is left alone
            resp = http.post(f"/v1/traders/{TRADER}/reverify",
                             headers=bearer("b-staff", Prefer="respond-async"))
            assert resp.status_code == 202, resp.get_json()
            new_id = resp.get_json()["id"]
            end = time.monotonic() + 15
            while http.get(f"/v1/verifications/{new_id}",
                           headers=bearer("b-shop")).get_json()["state"] != "settled":
                assert time.monotonic() < end, "the re-verification never settled"
                time.sleep(0.05)
            app.extensions["trace30.webhooks"].deliver_due()
            hooks = hook_b.wait_for(1, timeout_s=10)
            log = log_of(app)
            deliveries = log.deliveries(new_id)
            current_a = log.current(TRADER, tenant="shop-a")
        finally:
            shutdown(app)
        assert hook_a.received == []
    payload = json.loads(hooks[0].body)
    assert payload["event"] == "verification.completed"
    assert payload["verification"]["id"] == new_id
    assert [(d.client_id, d.tenant_id) for d in deliveries] == [("b-shop", "shop-b")]
    assert current_a is not None and current_a.id == a["id"] and new_id != b["id"]


def test_the_dashboard_shows_the_signed_in_clients_tenant_only(app: Flask,
                                                               http: FlaskClient) -> None:
    a = verify(http, "a-shop", submission(trader_id="only-in-a"))
    a_same = verify(http, "a-shop", GOOD)
    b_same = verify(http, "b-shop", GOOD)
    assert sign_in(http, KEYS["b-staff"]).status_code == 303
    home = page(http, "/ops/")
    assert "only-in-a" not in home and TRADER in home
    assert "tenant <strong>shop-b</strong>" in home
    # shop-b's trader of the same id, not shop-a's
    trader_page = page(http, f"/ops/traders/{TRADER}")
    assert b_same["id"] in trader_page and a_same["id"] not in trader_page
    hidden = [http.get(url, headers=HTML) for url in
              ("/ops/traders/only-in-a", f"/ops/verifications/{a['id']}",
               f"/ops/verifications/{a_same['id']}")]
    assert [r.status_code for r in hidden] == [404, 404, 404]
    token = csrf_of(http.get("/ops/"))
    reverify = http.post("/ops/traders/only-in-a/reverify", data={"csrf_token": token})
    end = http.post("/ops/traders/only-in-a/end", data={"csrf_token": token, "confirm": "yes"})
    assert (reverify.status_code, end.status_code) == (404, 404)
    log = log_of(app)
    assert [r.id for r in log.history("only-in-a", tenant="shop-a")] == [a["id"]]
    assert log.trader_summaries(tenant="shop-a", trader_id="only-in-a")[0].ended_at is None
    assert log.actions("only-in-a", tenant="shop-a") == []
    # shop-a's staff see shop-a's traders
    staff_a = app.test_client()
    assert sign_in(staff_a, KEYS["a-staff"]).status_code == 303
    assert "only-in-a" in page(staff_a, "/ops/")
    assert a["id"] in page(staff_a, "/ops/traders/only-in-a")
