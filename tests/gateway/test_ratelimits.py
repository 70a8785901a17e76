"""Per-client rate limits at the gateway (services/gateway/ratelimits.py)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask

from services.gateway import create_app, shutdown
from shared import config
from shared.clients import key_digest
from shared.errors import ConfigError
from shared.redis_client import Store, connect
from tests.conftest import free_port

SHOP_KEY = "rate-test-shop-key"
OTHER_KEY = "rate-test-other-key"
SHOP = {"Authorization": f"Bearer {SHOP_KEY}"}
OTHER = {"Authorization": f"Bearer {OTHER_KEY}"}
URL = "/v1/reasons"  # cheap: no upstream, no evidence log


def keys(shop_limit: str | None = "3/minute") -> str:
    shop = {"id": "shop", "key": SHOP_KEY, "scopes": ["onboarding"]}
    if shop_limit:
        shop["rate_limit"] = shop_limit
    return json.dumps([shop, {"id": "other", "key": OTHER_KEY, "scopes": ["onboarding"]}])


@pytest.fixture
def limited_config(gateway_config: dict) -> dict:
    return {**gateway_config, "GATEWAY_API_KEYS": keys(), "GATEWAY_RATE_LIMIT": "50/minute"}


@pytest.fixture
def limited(limited_config: dict) -> Iterator[Flask]:
    app = create_app(limited_config)
    yield app
    shutdown(app)


def test_a_client_over_its_limit_gets_429_problem_with_retry_after(limited: Flask) -> None:
    client = limited.test_client()
    remaining = []
    for _ in range(3):
        resp = client.get(URL, headers=SHOP)
        assert resp.status_code == 200
        assert resp.headers["RateLimit-Limit"] == "3"
        remaining.append(resp.headers["RateLimit-Remaining"])
        assert 1 <= int(resp.headers["RateLimit-Reset"]) <= 60
    assert remaining == ["2", "1", "0"]
    over = client.get(URL, headers=SHOP)
    assert over.status_code == 429
    assert over.mimetype == "application/problem+json"
    body = over.get_json()
    assert body["status"] == 429 and body["type"].endswith("/too-many-requests")
    assert "3 per 1 minute" in body["detail"]
    assert 1 <= int(over.headers["Retry-After"]) <= 60
    assert over.headers["RateLimit-Remaining"] == "0"
    assert SHOP_KEY not in over.get_data(as_text=True)


def test_one_client_over_its_limit_does_not_affect_another(limited: Flask) -> None:
    client = limited.test_client()
    for _ in range(3):
        assert client.get(URL, headers=SHOP).status_code == 200
    assert client.get(URL, headers=SHOP).status_code == 429
    for _ in range(10):
        resp = client.get(URL, headers=OTHER)
        assert resp.status_code == 200
    assert resp.headers["RateLimit-Limit"] == "50"  # the default of TRACE30_GATEWAY_RATE_LIMIT
    assert resp.headers["RateLimit-Remaining"] == "40"


def test_the_limit_holds_across_gateway_processes(limited_config: dict, store: Store) -> None:
    first, second = create_app(limited_config), create_app(limited_config)
    try:
        a, b = first.test_client(), second.test_client()
        assert a.get(URL, headers=SHOP).status_code == 200
        assert b.get(URL, headers=SHOP).status_code == 200
        assert a.get(URL, headers=SHOP).status_code == 200
        assert b.get(URL, headers=SHOP).status_code == 429
        assert a.get(URL, headers=SHOP).status_code == 429
    finally:
        shutdown(first)
        shutdown(second)
    # counted under the suite's prefix, by client id: never the key nor its digest
    names = list(store.client.scan_iter(match=store.prefix + "*"))
    counted = [n for n in names if n.startswith(store.key("ratelimit"))]
    assert counted and all("shop" in n or "other" in n for n in counted)
    assert not any(SHOP_KEY in n or key_digest(SHOP_KEY) in n for n in names)


def test_every_v1_route_shares_the_budget_and_other_routes_are_not_counted(
        limited: Flask) -> None:
    client = limited.test_client()
    assert client.get(URL, headers=SHOP).status_code == 200
    assert client.get("/v1/verifications/none", headers=SHOP).status_code == 404
    for _ in range(5):
        assert client.get("/healthz").status_code == 200
        assert client.get(URL, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get(URL, headers=SHOP).headers["RateLimit-Remaining"] == "0"
    assert client.get(URL, headers=SHOP).status_code == 429


def test_without_a_client_limit_the_default_applies(gateway_config: dict) -> None:
    app = create_app({**gateway_config, "GATEWAY_API_KEYS": keys(None),
                      "GATEWAY_RATE_LIMIT": "2/minute;100/hour"})
    try:
        client = app.test_client()
        assert client.get(URL, headers=SHOP).headers["RateLimit-Limit"] == "2"
        assert client.get(URL, headers=SHOP).status_code == 200
        assert client.get(URL, headers=SHOP).status_code == 429
    finally:
        shutdown(app)


def test_the_embedded_sandbox_store_limits_in_process(limited_config: dict) -> None:
    store = connect(None, "trace30-test-embedded:", sandbox=True)
    assert store.embedded
    app = create_app({**limited_config, "REDIS_STORE": store})
    try:
        client = app.test_client()
        codes = [client.get(URL, headers=SHOP).status_code for _ in range(4)]
    finally:
        shutdown(app)
    assert codes == [200, 200, 200, 429]


def test_redis_down_lets_requests_through_with_a_warning(
        limited_config: dict, caplog: pytest.LogCaptureFixture) -> None:
    dead = connect(f"redis://127.0.0.1:{free_port()}/0", "trace30-test-dead:", 0.2)
    app = create_app({**limited_config, "REDIS_STORE": dead})
    try:
        client = app.test_client()
        with caplog.at_level(logging.WARNING, logger="services.gateway.ratelimits"):
            codes = [client.get(URL, headers=SHOP).status_code for _ in range(5)]
    finally:
        shutdown(app)
    assert codes == [200] * 5  # fail open: over the 3/minute, yet answered
    warnings = [r for r in caplog.records if r.name == "services.gateway.ratelimits"]
    assert len(warnings) == 5
    assert all("storage unavailable" in r.getMessage() for r in warnings)
    assert all(SHOP_KEY not in r.getMessage() and getattr(r, "client_id", None) == "shop"
               for r in warnings)


@pytest.mark.parametrize("limit", ["lots", "600 per fortnight", "", "10/minute;x"])
def test_a_bad_client_rate_limit_stops_start_up_naming_the_setting_and_client(
        limit: str) -> None:
    entry = [{"id": "shop", "key": SHOP_KEY, "scopes": ["onboarding"], "rate_limit": limit}]
    with pytest.raises(ConfigError, match=r"TRACE30_GATEWAY_API_KEYS is not valid: client "
                                          r"'shop': .* is not a rate limit"):
        config.load({"TRACE30_SANDBOX": "1", "TRACE30_GATEWAY_API_KEYS": json.dumps(entry)})


def test_a_bad_default_rate_limit_stops_start_up_naming_it() -> None:
    with pytest.raises(ConfigError, match="TRACE30_GATEWAY_RATE_LIMIT is not valid"):
        config.load({"TRACE30_GATEWAY_RATE_LIMIT": "fast"})
    assert config.load({})["GATEWAY_RATE_LIMIT"] == "1200/minute;50/second"
