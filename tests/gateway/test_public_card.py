"""The public trader card (DSA Art 30(7)): ``GET /public/v1/{tenant}/traders/{id}``.

The evidence log is seeded directly (verifications with their sealed submission, trader states
written into the traders table), so no upstream service is needed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import api, create_app, shutdown
from services.gateway.evidence import EvidenceLog, traders_table, verifications_table
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN
from tests.gateway.conftest import api_keys
from tests.gateway.evidence_fixtures import T0, make_record

IBAN = "DE89370400440532013000"
HOLDER = "Hidden Holder Holdings"
DOC_REF = "PASS-X12345678"
REASON_TEXT = "reviewer-only note about the trader"

SUB: dict[str, Any] = {
    "trader_id": "t-1",
    "name": "Müller & <Söhne> GmbH",
    "address": {"street": "Hauptstr. 1", "postcode": "10115", "city": "Berlin",
                "country_code": "DE"},
    "email": "contact@mueller.example",
    "phone": "+49 30 1234567",
    "identification": {"type": "passport", "reference": DOC_REF},
    "payment": {"kind": "iban", "iban": IBAN, "bic": "COBADEFFXXX", "account_holder": HOLDER},
    "registration": {"country_code": "DE", "number": "HRB 12345", "kind": "HRB",
                     "register": "Amtsgericht Berlin-Charlottenburg"},
    "vat_number": "DE123456789",
    "self_certification": {"accepted": True, "accepted_at": "2025-02-28T10:00:00+00:00",
                           "accepted_at_source": "client", "text_version": "2024-02"},
}
#: What the card must never show, in any form: (b), (c), reasons, internal notes.
SECRETS = [IBAN, "DE89", "0532013000", HOLDER, DOC_REF, "passport", "COBADEFF", REASON_TEXT,
           "VAT_INVALID", "needs_review", "verified", "fp-", "acct-", "WAPIAAAA", "payment",
           "identification", "reasons", "iban"]


@pytest.fixture
def public_config(store: Store, database_url: str) -> dict:
    """A gateway on this test's evidence log (SQLite and PostgreSQL), no upstream needed."""
    return {
        "TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": INTERNAL_TOKEN,
        "REDIS_STORE": store, "DATABASE_URL": database_url,
        "GATEWAY_API_KEYS": api_keys(), "GATEWAY_BACKGROUND": False,
    }


@pytest.fixture
def app(public_config: dict) -> Iterator[Flask]:
    app = create_app(public_config)
    yield app
    shutdown(app)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


def evidence(app: Flask) -> EvidenceLog:
    return app.extensions[api.EXTENSION].evidence


def seed(app: Flask, vid: str, trader_id: str = "t-1", tenant: str = "default",
         at: datetime = T0, verdict: str = "verified", **sub_changes: Any) -> None:
    sub = {**SUB, "trader_id": trader_id, **sub_changes}
    record = make_record(vid, trader_id, tenant_id=tenant, created_at=at, settled_at=at,
                         checked_at=at, verdict=verdict,
                         reasons=[{"code": "VAT_INVALID", "item": "30(1)(d)",
                                   "detail": REASON_TEXT}])
    evidence(app).save(record, private_submission=sub)


def set_trader(app: Flask, trader_id: str = "t-1", tenant: str = "default",
               **values: Any) -> None:
    tt = traders_table
    with evidence(app).engine.begin() as conn:
        conn.execute(sa.update(tt).where(tt.c.tenant_id == tenant, tt.c.trader_id == trader_id)
                     .values(**values))


def strings(value: Any) -> Iterator[str]:
    """Every key and every scalar of a JSON document, as text."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from strings(v)
    elif value is not None:
        yield str(value)


def assert_no_secret(text: str) -> None:
    lowered = text.lower()
    for secret in SECRETS:
        assert secret.lower() not in lowered, secret


def test_card_shows_30_7_data_and_nothing_of_b_or_c(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1")
    r = client.get("/public/v1/default/traders/t-1")
    assert r.status_code == 200, r.get_json()
    assert r.mimetype == "application/json"
    card = r.get_json()
    assert card == {
        "tenant": "default", "trader_id": "t-1", "as_of": None,
        "name": SUB["name"], "address": SUB["address"], "telephone": SUB["phone"],
        "email": SUB["email"],
        "register": {"name": "Amtsgericht Berlin-Charlottenburg", "country_code": "DE",
                     "in_register": True},
        "registration_number": "HRB 12345",
        "self_certification": {
            "statement": app.config["PUBLIC_CARD_CERTIFICATION_TEXT"],
            "accepted_at": "2025-02-28T10:00:00+00:00", "text_version": "2024-02"},
    }
    for text in strings(card):  # every field, key and value
        assert_no_secret(text)
    assert_no_secret(r.get_data(as_text=True))


def test_html_fragment_is_escaped_without_scripts(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1", name='<script>alert(1)</script><img src=x onerror="alert(2)">')
    r = client.get("/public/v1/default/traders/t-1", headers={"Accept": "text/html"})
    assert r.status_code == 200
    assert r.mimetype == "text/html"
    html = r.get_data(as_text=True)
    assert "<script" not in html.lower()
    assert not re.search(r"<[^>]*\son\w+\s*=", html, re.IGNORECASE)  # no event handler
    assert "style=" not in html.lower()
    assert "&lt;script&gt;" in html
    assert "contact@mueller.example" in html and "HRB 12345" in html
    assert "2025-02-28" in html
    assert_no_secret(html)
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert "Accept" in r.headers["Vary"]


def test_etag_and_304(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1")
    app.config["PUBLIC_CARD_MAX_AGE_S"] = 120
    r = client.get("/public/v1/default/traders/t-1")
    etag = r.headers["ETag"]
    assert etag.startswith('"') and not etag.startswith("W/")
    assert r.headers["Cache-Control"] == "public, max-age=120"
    again = client.get("/public/v1/default/traders/t-1", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.data == b""
    assert again.headers["ETag"] == etag
    html = client.get("/public/v1/default/traders/t-1", headers={"Accept": "text/html"})
    assert html.headers["ETag"] != etag  # another body, another validator
    # a change of the data changes the ETag: the 304 stops
    seed(app, "v2", at=T0 + timedelta(days=1), email="new@mueller.example")
    changed = client.get("/public/v1/default/traders/t-1", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag


@pytest.mark.parametrize("case", ["unknown", "needs_review", "rejected", "pending", "suspended",
                                  "ended", "other_tenant", "tenant_not_public", "bad_tenant"])
def test_no_card_unless_the_trader_may_trade(app: Flask, client: FlaskClient,
                                             case: str) -> None:
    url = "/public/v1/default/traders/t-1"
    if case in ("needs_review", "rejected", "pending"):
        seed(app, "v1", verdict=case)
    else:
        seed(app, "v1")
    if case == "unknown":
        url = "/public/v1/default/traders/t-2"
    elif case == "suspended":
        set_trader(app, state="suspended", suspended_at=T0 + timedelta(days=1))
    elif case == "ended":
        set_trader(app, ended_at=T0 + timedelta(days=1))
    elif case == "other_tenant":
        url = "/public/v1/shop-b/traders/t-1"
    elif case == "tenant_not_public":
        app.config["PUBLIC_CARD_TENANTS"] = frozenset({"shop-b"})
    elif case == "bad_tenant":
        url = "/public/v1/Not%20A%20Tenant/traders/t-1"
    r = client.get(url)
    assert r.status_code == 404
    assert r.mimetype == "application/problem+json"
    assert_no_secret(r.get_data(as_text=True))


def test_approved_by_a_reviewer_and_correction_requested_still_show(
        app: Flask, client: FlaskClient) -> None:
    seed(app, "v1", verdict="needs_review")
    assert client.get("/public/v1/default/traders/t-1").status_code == 404
    # the reviewer's approval: a manual verification, verified, here kept without a sealed
    # submission of its own (the card then shows that of the verification it settles)
    evidence(app).save(make_record("v1-manual", "t-1", created_at=T0 + timedelta(hours=2),
                                   settled_at=T0 + timedelta(hours=2)))
    with evidence(app).engine.begin() as conn:
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == "v1-manual")
                     .values(source="manual", settles_verification_id="v1"))
    set_trader(app, state="correction_requested")
    r = client.get("/public/v1/default/traders/t-1")
    assert r.status_code == 200 and r.get_json()["email"] == SUB["email"]


def test_tenants_are_kept_apart(app: Flask, client: FlaskClient) -> None:
    seed(app, "va", tenant="shop-a", name="Shop A's trader")
    seed(app, "vb", tenant="shop-b", name="Shop B's trader")
    a = client.get("/public/v1/shop-a/traders/t-1").get_json()
    b = client.get("/public/v1/shop-b/traders/t-1").get_json()
    assert (a["name"], b["name"]) == ("Shop A's trader", "Shop B's trader")
    assert client.get("/public/v1/default/traders/t-1").status_code == 404
    app.config["PUBLIC_CARD_TENANTS"] = frozenset({"shop-a"})
    assert client.get("/public/v1/shop-a/traders/t-1").status_code == 200
    assert client.get("/public/v1/shop-b/traders/t-1").status_code == 404


def test_fields_are_configurable(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1")
    app.config["PUBLIC_CARD_FIELDS"] = ("name", "vat_number")
    card = client.get("/public/v1/default/traders/t-1").get_json()
    assert card == {"tenant": "default", "trader_id": "t-1", "as_of": None,
                    "name": SUB["name"], "vat_number": "DE123456789"}
    html = client.get("/public/v1/default/traders/t-1",
                      headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "DE123456789" in html and "contact@mueller.example" not in html


def test_a_field_30_7_does_not_allow_stops_start_up(public_config: dict) -> None:
    from shared.errors import ConfigError

    with pytest.raises(ConfigError, match="PUBLIC_CARD_FIELDS"):
        create_app({**public_config, "PUBLIC_CARD_FIELDS": "name,iban"})


def test_card_at_a_past_date(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1", email="old@mueller.example")
    seed(app, "v2", at=T0 + timedelta(days=10), verdict="rejected")
    seed(app, "v3", at=T0 + timedelta(days=20), email="new@mueller.example")
    suspended = T0 + timedelta(days=30)
    set_trader(app, state="suspended", suspended_at=suspended)

    def get(at: str) -> Any:
        return client.get("/public/v1/default/traders/t-1", query_string={"at": at})

    assert client.get("/public/v1/default/traders/t-1").status_code == 404  # suspended now
    assert get("2025-02-28").status_code == 404  # before the first verification
    first = get("2025-03-05")
    assert first.status_code == 200
    assert first.get_json()["email"] == "old@mueller.example"
    assert first.get_json()["as_of"] == "2025-03-05T23:59:59.999999+00:00"
    assert get("2025-03-12T12:00:00+00:00").status_code == 404  # rejected then
    assert get("2025-03-25").get_json()["email"] == "new@mueller.example"
    assert get((suspended + timedelta(hours=1)).isoformat()).status_code == 404
    assert first.headers["ETag"] != get("2025-03-06").headers["ETag"]
    # reinstated later: the card is back, and the suspension still shows in the past
    set_trader(app, state="reinstated", reinstated_at=suspended + timedelta(days=2))
    assert client.get("/public/v1/default/traders/t-1").status_code == 200
    assert get((suspended + timedelta(days=1)).isoformat()).status_code == 404


@pytest.mark.parametrize("at", ["yesterday", "2025-13-01", "2025-03-01T10:00:00",
                                "1999-12-31", "2999-01-01", "x" * 100])
def test_bad_dates_are_400(app: Flask, client: FlaskClient, at: str) -> None:
    seed(app, "v1")
    r = client.get("/public/v1/default/traders/t-1", query_string={"at": at})
    assert r.status_code == 400
    assert r.mimetype == "application/problem+json"
    assert "at" in json.dumps(r.get_json()["errors"])


def test_rate_limit_per_ip(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1")
    app.config.update(PUBLIC_CARD_RATE_PER_MINUTE=1, PUBLIC_CARD_BURST=3)
    ip_a = {"REMOTE_ADDR": "192.0.2.10"}
    codes = [client.get("/public/v1/default/traders/t-1", environ_base=ip_a).status_code
             for _ in range(3)]
    assert codes == [200, 200, 200]
    limited = client.get("/public/v1/default/traders/unknown", environ_base=ip_a)
    assert limited.status_code == 429
    assert limited.mimetype == "application/problem+json"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60
    # another address has its own allowance
    other = client.get("/public/v1/default/traders/t-1",
                       environ_base={"REMOTE_ADDR": "192.0.2.11"})
    assert other.status_code == 200
    # the key is a digest: the address itself is nowhere in Redis
    store: Store = app.extensions["trace30.redis"]
    keys = list(store.client.scan_iter(store.prefix + "*"))
    assert keys and not any("192.0.2" in k for k in keys)


def test_no_credentials_needed_and_documented(app: Flask, client: FlaskClient) -> None:
    seed(app, "v1")
    r = client.get("/public/v1/default/traders/t-1",
                   headers={"Authorization": "Bearer not-a-key"})
    assert r.status_code == 200
    spec = client.get("/openapi.json").get_json()
    operation = spec["paths"]["/public/v1/{tenant}/traders/{trader_id}"]["get"]
    assert operation["security"] == []  # no credentials
    assert {"application/json", "text/html"} <= set(operation["responses"]["200"]["content"])
    assert operation["responses"]["200"]["description"]


def test_card_time_is_not_now_dependent(app: Flask, client: FlaskClient) -> None:
    """The same data gives the same bytes (and ETag) on every request, so a CDN can keep it."""
    seed(app, "v1")
    first = client.get("/public/v1/default/traders/t-1")
    second = client.get("/public/v1/default/traders/t-1")
    assert first.data == second.data and first.headers["ETag"] == second.headers["ETag"]
    assert datetime.now(UTC).isoformat()[:16] not in first.get_data(as_text=True)


def test_past_suspensions_come_from_their_history(app: Flask, client: FlaskClient) -> None:
    """Suspended, reinstated, suspended again: the trader row keeps only the last suspension;
    the statements of reasons and the staff actions tell the earlier one."""
    from services.gateway.evidence import staff_actions_table
    from services.gateway.evidence.schema import statements_table

    seed(app, "v1")
    s1, r1, s2 = (T0 + timedelta(days=d) for d in (5, 8, 20))
    with evidence(app).engine.begin() as conn:
        conn.execute(sa.insert(statements_table).values(
            id="st1", tenant_id="default", trader_id="t-1", kind="suspension", automated=False,
            content={}, created_at=s1))
        conn.execute(sa.insert(staff_actions_table).values(
            id="a1", at=r1, actor="staff:x", action="reinstate", trader_id="t-1",
            tenant_id="default"))
        # the same trader id at another tenant is suspended: nothing to do with this one
        conn.execute(sa.insert(staff_actions_table).values(
            id="a2", at=r1 + timedelta(days=1), actor="staff:x", action="suspend",
            trader_id="t-1", tenant_id="shop-b"))
    set_trader(app, state="suspended", suspended_at=s2, reinstated_at=r1)

    def status(at: datetime) -> int:
        return client.get("/public/v1/default/traders/t-1",
                          query_string={"at": at.isoformat()}).status_code

    assert [status(s1 - timedelta(hours=1)), status(s1 + timedelta(hours=1)),
            status(r1 + timedelta(days=2)), status(s2 + timedelta(hours=1))] == \
        [200, 404, 200, 404]


def test_card_of_a_trader_verified_through_the_api(gateway: Flask) -> None:
    """End to end: a submission verified by the real services gives a card with its 30(7)
    data, and nothing of its payment account or identification."""
    from tests.gateway.conftest import ONBOARDING
    from tests.gateway.test_flow import GOOD

    client = gateway.test_client()
    verified = client.post("/v1/verifications", json=GOOD, headers=ONBOARDING)
    assert verified.get_json()["verdict"] == "verified", verified.get_json()
    r = client.get(f"/public/v1/default/traders/{GOOD['trader_id']}")
    assert r.status_code == 200, r.get_json()
    card = r.get_json()
    assert (card["name"], card["email"], card["telephone"], card["registration_number"]) == (
        GOOD["name"], GOOD["email"], GOOD["phone"], GOOD["registration"]["number"])
    assert card["self_certification"]["accepted_at"] == "2026-11-28T10:00:00+00:00"
    for html in (False, True):
        text = client.get(f"/public/v1/default/traders/{GOOD['trader_id']}",
                          headers={"Accept": "text/html"} if html else {}).get_data(as_text=True)
        # (the account holder is the trader's name here: it is on the card as the name)
        for secret in (GOOD["payment"]["iban"], GOOD["payment"]["iban"][-8:],
                       GOOD["identification"]["reference"],
                       "national_id", "verified", "fingerprint", "consultation"):
            assert secret.lower() not in text.lower(), secret
