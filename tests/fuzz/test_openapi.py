"""Schemathesis against each service's own ``/openapi.json`` (issue 9, finding 4).

Every operation of the document gets examples that follow the schema, examples that break it
(wrong types, missing fields, values out of range, strange strings), and examples that follow
it except for one string, path or query value replaced by a hostile one (NUL, a lone
surrogate, an escape sequence, a date out of range...: what JSON and the schema allow but the
code behind once did not survive), authenticated as a client would be. Whatever it sends, the
service must not answer 5xx, and every 4xx must be an ``application/problem+json`` document.
The gateway keeps its evidence on PostgreSQL here (which refuses NUL). The examples are
bounded and always the same (derandomised) so that the four services take well under a minute
together; ``TRACE30_FUZZ_EXAMPLES=500`` runs that many random examples per operation instead,
to hunt for more.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode

from services.gateway import create_app as create_gateway
from services.gateway import shutdown
from shared.redis_client import Store
from tests.conftest import Suite
from tests.fuzz.conftest import Service, gateway_settings
from tests.gateway.conftest import ONBOARDING

pytestmark = pytest.mark.slow  # schemathesis over every operation

#: Examples per operation (about a third of each kind).
EXAMPLES = {"vat": 90, "registry": 90, "payment": 90, "gateway": 30}
HUNT = int(os.environ.get("TRACE30_FUZZ_EXAMPLES", "0"))
#: Strings that are valid JSON but were not valid input for the code behind.
HOSTILE = [
    "a\x00b", "a\ud800b", "\udfff", "\x1b[31mred", "\x7f", "\x85", "   ", "x" * 5000,
    "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+00:00",
    "\u202eevil", "\ufeff", "../../etc/passwd", "%00",
]


def _string_slots(value: Any, path: tuple = ()) -> list[tuple]:
    """Where ``value`` (a JSON document or a parameter mapping) holds strings."""
    if isinstance(value, str):
        return [path]
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _string_slots(v, (*path, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _string_slots(v, (*path, i))]
    return []


def _replace(value: Any, path: tuple, new: str) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = _replace(value[path[0]], path[1:], new)
    return copy


def _rebuilt(case: Any, **changes: Any) -> Any:
    """A new case of the same request with ``changes``: a case made by hand, which schemathesis
    does not validate again (its validator cannot read a lone surrogate)."""
    parts = {"body": case.body, "path_parameters": case.path_parameters, "query": case.query,
             "headers": case.headers, "media_type": case.media_type, **changes}
    return case.operation.Case(**parts)


def _hostile(case: Any, slot: int, text: str) -> Any:
    """``case`` with its ``slot``-th string (body, path, query) replaced by ``text``."""
    places = [(where, path) for where in ("body", "path_parameters", "query")
              for path in _string_slots(getattr(case, where, None))]
    if not places:
        return case
    where, path = places[slot % len(places)]
    in_text = where != "body" or (case.media_type or "").startswith("multipart/")
    if in_text and any(0xD800 <= ord(c) <= 0xDFFF for c in text):
        text = "a\x00b"  # a URL or a form cannot carry a lone surrogate (no UTF-8 for it)
    return _rebuilt(case, **{where: _replace(getattr(case, where), path, text)})


#: A request each check takes in full (a VAT number VIES knows, a name to compare, a payee to
#: verify), so that a hostile value in it goes all the way to the upstream call.
GOOD = {
    "POST /v1/vat/check": {
        "vat_number": "FR19812345676", "requester_vat_number": "NL820246633B01",
        "trader": {"name": "SAS Boulangerie Martin", "street": "4 rue du Four",
                   "postcode": "75006", "city": "Paris"}},
    "POST /v1/registry/check": {"country_code": "FR", "number": "812345676",
                                "name": "Boulangerie Martin SAS"},
    "POST /v1/payment/check": {"iban": "FR7630004000030001234567897", "bic": "BDFEFRPPCCT",
                               "account_holder": "Boulangerie Martin SAS",
                               "trader_name": "Boulangerie Martin", "verify_payee": True},
    "POST /v1/verifications": {
        "trader_id": "boulangerie-martin", "name": "Boulangerie Martin SAS",
        "address": {"street": "4 rue du Four", "postcode": "75006", "city": "Paris",
                    "country_code": "FR"},
        "email": "contact@boulangerie-martin.example", "phone": "+33 1 42 22 00 00",
        "identification": {"type": "national_id", "reference": "FR-ID-778899"},
        "payment": {"iban": "FR7630004000030001234567897",
                    "account_holder": "Boulangerie Martin SAS"},
        "registration": {"country_code": "FR", "number": "812345676", "kind": "siren"},
        "vat_number": "FR19812345676",
        "self_certification": {"accepted": True, "accepted_at": "2026-11-28T10:00:00+00:00"}},
    "POST /v1/traders/{trader_id}/end": {"ended_at": "2026-11-28T10:00:00+00:00"},
}
#: Bodies that are not the JSON a service takes: too deep, too big a number, not UTF-8.
RAW = [b'{"a":' * 2000, b"[" * 5000 + b"]" * 5000, b'{"max_age_s": ' + b"9" * 5000 + b"}",
       b'{"x": 1e999}', b'{"x": NaN}', b'{"name": "\xff"}', b"", b"{"]


def hostile_cases(operation: Any) -> st.SearchStrategy[Any]:
    """Cases that follow the schema (or are :data:`GOOD`) but for one hostile string, and
    for operations that take a body, cases with one of the :data:`RAW` bodies."""
    base = operation.as_strategy(GenerationMode.POSITIVE)
    good = GOOD.get(operation.label)
    if good is not None:
        base = st.one_of(base, st.builds(lambda: operation.Case(
            body=json.loads(json.dumps(good)), media_type="application/json",
            path_parameters={"trader_id": "boulangerie-martin"}
            if "{trader_id}" in operation.path else None)))
    cases = st.builds(_hostile, base, st.integers(0, 40), st.sampled_from(HOSTILE))
    if good is not None:
        raw = st.builds(lambda case, body: _rebuilt(case, body=body), base,
                        st.sampled_from(RAW))
        cases = st.one_of(cases, raw)
    return cases


def _describe(case: Any, response: Any) -> str:
    body = response.content[:500] if response.content else b""
    return (f"{case.method} {case.formatted_path} query={case.query!r} "
            f"body={json.dumps(case.body, default=repr)[:300] if case.body is not None else None}"
            f" -> {response.status_code} {body!r}")


def fuzz(service: Service, examples: int) -> int:
    """Run every operation of ``service``'s document; return how many were run."""
    schema = schemathesis.openapi.from_wsgi("/openapi.json", service.app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations
    for operation in operations:
        cases = st.one_of(operation.as_strategy(GenerationMode.POSITIVE),
                          operation.as_strategy(GenerationMode.NEGATIVE),
                          hostile_cases(operation))

        @settings(max_examples=HUNT or examples, deadline=None, database=None,
                  derandomize=not HUNT, suppress_health_check=list(HealthCheck))
        @given(case=cases)
        def run(case: Any) -> None:
            response = case.call(headers=service.auth)
            assert response.status_code < 500, _describe(case, response)
            if response.status_code >= 400:
                content_type = response.headers.get("content-type", [""])[0]
                assert content_type.startswith("application/problem+json"), _describe(
                    case, response)

        run()
    return len(operations)


@pytest.mark.parametrize("name", ["vat", "registry", "payment"])
def test_no_5xx_and_problem_json_for_every_4xx(request: pytest.FixtureRequest, name: str) -> None:
    service: Service = request.getfixturevalue(f"{name}_service")
    assert fuzz(service, EXAMPLES[name]) >= 1


@pytest.fixture
def pg_gateway(suite: Suite, store: Store, database_url: str) -> Iterator[Service]:
    app = create_gateway(gateway_settings(suite, store, database_url))
    yield Service("gateway", app, "/v1/verifications", ONBOARDING)
    shutdown(app)


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_no_5xx_and_problem_json_for_every_4xx_gateway(pg_gateway: Service) -> None:
    assert fuzz(pg_gateway, EXAMPLES["gateway"]) >= 7
