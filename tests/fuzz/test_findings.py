"""Issue 9, findings 4 and 5, one regression test each, on every service they concern.

Before the fix each of these was a 500 (RecursionError, ValueError, UnicodeEncodeError, a
PostgreSQL error on NUL, OverflowError), a blank trader id stored under ``""``, a trader made
purgeable at once by a date in year 1, or a 100 MB body read whole.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from services.gateway import create_app as create_gateway
from services.gateway import shutdown
from shared.redis_client import Store
from tests.conftest import Suite
from tests.fuzz.conftest import Service, gateway_settings
from tests.gateway.conftest import ONBOARDING, OPS, OPS_KEY
from tests.gateway.evidence_fixtures import database_url  # noqa: F401 (fixture)
from tests.shared.test_inputs import Unreadable

PROBLEM = "application/problem+json"
GOOD = {
    "trader_id": "boulangerie-martin",
    "name": "Boulangerie Martin SAS",
    "address": {"street": "4 rue du Four", "postcode": "75006", "city": "Paris",
                "country_code": "FR"},
    "identification": {"type": "national_id"},
    "payment": {"iban": "FR7630004000030001234567897",
                "account_holder": "Boulangerie Martin SAS"},
    "registration": {"country_code": "FR", "number": "812345676", "kind": "siren"},
    "vat_number": "FR19812345676",
    "self_certification": {"accepted": True},
}
#: A valid body of each service's check, as JSON text with room for one more field.
VALID = {
    "vat": '{"vat_number": "DE136695976"',
    "registry": '{"country_code": "FR", "number": "812345676"',
    "payment": '{"iban": "DE89370400440532013000"',
    "gateway": '{"trader_id": "t-1"',
}


def post_text(service: Service, text: str, path: str | None = None) -> Any:
    """POST ``text`` as it is (lone surrogates as JSON escapes) to the service's check."""
    return service.client.post(path or service.check_path, data=text.encode(),
                               headers={**service.auth, "Content-Type": "application/json"})


def problem(resp: Any, status: int = 400) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    return resp.get_json()


# -- finding 4: malformed input ----------------------------------------------------------------


def test_a_lone_surrogate_in_trader_id_is_a_400(gateway_service: Service) -> None:
    doc = problem(post_text(gateway_service, '{"trader_id": "a\\ud800b"}'))
    assert doc["errors"] == {"trader_id": ["Must be valid Unicode text (found the lone "
                                           "surrogate U+D800)."]}


def test_a_lone_surrogate_in_the_vat_trader_name_is_a_400(vat_service: Service) -> None:
    doc = problem(post_text(vat_service, VALID["vat"] + ', "trader": {"name": "a\\ud800b"}}'))
    assert list(doc["errors"]) == ["trader"] and list(doc["errors"]["trader"]) == ["name"]


def test_a_lone_surrogate_in_the_account_holder_is_a_400(payment_service: Service) -> None:
    doc = problem(post_text(payment_service, VALID["payment"]
                            + ', "account_holder": "a\\ud800b", "verify_payee": true}'))
    assert list(doc["errors"]) == ["account_holder"]
    assert "DE8937" not in str(doc)


def test_a_number_of_5000_digits_is_a_400_on_every_service(service: Service) -> None:
    doc = problem(post_text(service, VALID[service.name] + ', "max_age_s": ' + "9" * 5000 + "}"))
    assert doc["errors"] == {"body": ["A number in the body is longer than 40 digits."]}


def test_json_nested_2000_deep_is_a_400_on_every_service(service: Service) -> None:
    doc = problem(post_text(service, '{"a":' * 2000))
    assert doc["errors"] == {"body": ["The body is nested more than 32 levels deep."]}


@pytest.mark.parametrize("path", ["/v1/x%00y", "/healthz%00", "/openapi.json?x=%00"])
def test_nul_in_a_path_or_query_is_a_400_on_every_service(service: Service, path: str) -> None:
    doc = problem(service.client.get(path, headers=service.auth))
    assert list(doc["errors"]) == (["x"] if "?" in path else ["path"])


def test_a_blank_trader_id_is_refused(gateway_service: Service) -> None:
    doc = problem(post_text(gateway_service, '{"trader_id": "   "}'))
    assert doc["errors"] == {"trader_id": ["Must not be blank."]}


@pytest.fixture
def pg_gateway(suite: Suite, store: Store, database_url: str) -> Iterator[Service]:  # noqa: F811
    app = create_gateway(gateway_settings(suite, store, database_url))
    yield Service("gateway", app, "/v1/verifications", ONBOARDING)
    shutdown(app)


def staff_client(service: Service) -> FlaskClient:
    client = service.client
    form = client.get("/ops/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', form)
    assert token
    resp = client.post("/ops/login", data={"api_key": OPS_KEY, "csrf_token": token.group(1)})
    assert resp.status_code in (302, 303), resp.status_code
    return client


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_nul_in_a_trader_id_on_postgresql_is_a_400(pg_gateway: Service) -> None:
    api = pg_gateway.client
    doc = problem(post_text(pg_gateway, '{"trader_id": "a\\u0000b"}'))
    assert list(doc["errors"]) == ["trader_id"]
    for method, path in [("GET", "/v1/traders/a%00b"), ("GET", "/v1/traders/a%00b/history"),
                         ("POST", "/v1/traders/a%00b/reverify"), ("POST", "/v1/traders/a%00b/end"),
                         ("GET", "/v1/verifications/a%00b")]:
        resp = api.open(path, method=method, headers=OPS if "history" in path
                        or "reverify" in path else ONBOARDING)
        assert problem(resp)["errors"] == {
            "path": ["Must not contain control characters (found U+0000)."]}, path
    staff = staff_client(pg_gateway)
    for path in ["/ops/traders/a%00b", "/ops/verifications/a%00b", "/ops/?trader_id=a%00b"]:
        resp = staff.get(path, headers={"Accept": PROBLEM})
        assert list(problem(resp)["errors"]) == (["trader_id"] if "?" in path else ["path"])


@pytest.mark.parametrize(("ended_at", "message"), [
    ("0001-01-01T00:00:00+14:00", "Must not be before 2000-01-01."),
    ("0001-01-01T00:00:00+00:00", "Must not be before 2000-01-01."),
    ("1999-12-31T23:59:59+00:00", "Must not be before 2000-01-01."),
])
def test_an_end_before_2000_or_out_of_range_is_a_400(gateway_service: Service, ended_at: str,
                                                     message: str) -> None:
    client = gateway_service.client
    first = client.post("/v1/verifications", json=GOOD,
                        headers={**ONBOARDING, "Prefer": "wait=10"})
    assert first.status_code == 200, first.get_data(as_text=True)
    resp = client.post("/v1/traders/boulangerie-martin/end", json={"ended_at": ended_at},
                       headers=ONBOARDING)
    assert problem(resp)["errors"] == {"ended_at": [message]}
    # 2000 passes the schema, and is then refused for being before the first verification
    early = client.post("/v1/traders/boulangerie-martin/end",
                        json={"ended_at": "2000-01-01T00:00:00+00:00"}, headers=ONBOARDING)
    assert list(problem(early)["errors"]) == ["ended_at"]
    ok = client.post("/v1/traders/boulangerie-martin/end", headers=ONBOARDING)  # now
    assert ok.status_code == 200


# -- finding 5: no body size limit --------------------------------------------------------------


def test_a_100_mb_body_is_a_413_before_it_is_read_on_every_service(service: Service) -> None:
    resp = service.client.post(service.check_path, input_stream=Unreadable(),
                               headers={**service.auth, "Content-Type": "application/json"},
                               environ_overrides={"CONTENT_LENGTH": str(100 * 1024 * 1024)})
    doc = problem(resp, 413)
    assert doc["errors"] == {"body": [f"Larger than {1024 * 1024} bytes."]}
