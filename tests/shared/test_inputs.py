"""shared.inputs: text rules, the JSON parser's limits, the body limit, path and query checks.

Issue 9, findings 4 and 5: malformed input must be a 400 (a too-large body a 413) problem+json
naming what is wrong, never a 500, and a body must be refused before it is read.
"""

from __future__ import annotations

import io
import json
from typing import Any

import marshmallow as ma
import pytest
from flask import Flask, jsonify, request
from flask.testing import FlaskClient
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.factory import create_base_app
from shared.inputs import (
    MAX_JSON_DEPTH,
    Email,
    JsonInputError,
    Text,
    check_text,
    max_body,
    parse_json,
    text_problem,
)
from shared.openapi import Blueprint
from shared.redis_client import Store
from tests.conftest import AUTH, INTERNAL_TOKEN

PROBLEM = "application/problem+json"
LIMIT = 64 * 1024


class Body(ma.Schema):
    trader_id = Text(required=True, max_length=20, single_line=True, blank=False)
    name = Text(max_length=50)
    email = Email()
    max_age_s = ma.fields.Integer()


class Query(ma.Schema):
    q = Text(max_length=20, single_line=True)


def build_app(store: Store, **config: Any) -> Flask:
    app, api = create_base_app(__name__, "inputs-test", {
        "TESTING": True, "INTERNAL_TOKEN": INTERNAL_TOKEN, "REDIS_STORE": store,
        "MAX_BODY_BYTES": LIMIT, **config}, title="inputs test")
    bp = Blueprint("t", __name__, url_prefix="/v1")

    @bp.post("/things")
    @bp.arguments(Body())
    def things(body: dict[str, Any]) -> Any:
        return jsonify(body)

    @bp.get("/things/<thing_id>")
    @bp.arguments(Query(), location="query")
    def thing(query: dict[str, Any], thing_id: str) -> Any:
        return jsonify(id=thing_id, **query)

    @bp.post("/documents")
    @max_body(4 * LIMIT)
    def documents() -> Any:
        return jsonify(size=len(request.get_data()))

    @bp.post("/raw")
    def raw() -> Any:
        return jsonify(size=len(request.get_data()))

    @bp.post("/flask-json")
    def flask_json() -> Any:
        return jsonify(type=type(request.get_json()).__name__)

    api.register_blueprint(bp)
    return app


@pytest.fixture
def client(store: Store) -> FlaskClient:
    return build_app(store).test_client()


def problem(resp: Any, status: int) -> dict[str, Any]:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    return resp.get_json()


def post_json(client: FlaskClient, path: str, text: str) -> Any:
    return client.post(path, data=text.encode("utf-8", "surrogatepass"),
                       headers={**AUTH, "Content-Type": "application/json"})


# -- text --------------------------------------------------------------------------------------


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x0b", "\x0c", "\x1b", "\x7f", "\x85", "\x9f"])
def test_control_characters_are_refused(char: str) -> None:
    assert text_problem(f"ACME{char}GmbH") == (
        f"Must not contain control characters (found U+{ord(char):04X}).")


def test_line_breaks_only_in_multi_line_text() -> None:
    for value in ("4 rue du Four\nBâtiment B", "a\tb", "a\r\nb"):
        assert text_problem(value) is None
        assert text_problem(value, single_line=True) is not None


@pytest.mark.parametrize("value", ["a\ud800b", "\udfff", "x\udbff"])
def test_lone_surrogates_are_refused(value: str) -> None:
    assert "lone surrogate" in (text_problem(value) or "")


def test_check_text_lengths_and_blanks() -> None:
    check_text("ok", max_length=2)
    with pytest.raises(ma.ValidationError, match="Longer than maximum length 2"):
        check_text("abc", max_length=2)
    with pytest.raises(ma.ValidationError, match="Must not be blank"):
        check_text(" \t ", max_length=5, blank=False)
    with pytest.raises(ma.ValidationError, match="Shorter than minimum length 2"):
        check_text("a", max_length=5, min_length=2)


def test_text_field_names_the_field_and_never_repeats_the_value() -> None:
    with pytest.raises(ma.ValidationError) as e:
        Body().load({"trader_id": "   ", "name": "DE89370400440532013000\x00",
                     "email": "jane\x00@example.com"})
    messages = e.value.messages
    assert set(messages) == {"trader_id", "name", "email"}  # type: ignore[arg-type]
    assert messages["trader_id"] == ["Must not be blank."]  # type: ignore[index]
    assert "DE8937" not in json.dumps(messages) and "jane" not in json.dumps(messages)


def test_every_text_field_has_a_documented_max_length() -> None:
    with pytest.raises(TypeError):
        Text()  # type: ignore[call-arg]
    assert Body().fields["name"].validators[0].max == 50  # type: ignore[attr-defined]


def _control(c: str) -> bool:
    return ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F


@settings(deadline=None)
@given(st.text(max_size=30))
def test_the_field_accepts_exactly_what_the_validator_accepts(value: str) -> None:
    try:
        Query().load({"q": value})
        loaded = True
    except ma.ValidationError:
        loaded = False
    assert loaded == (text_problem(value, single_line=True) is None and len(value) <= 20)


@settings(deadline=None)
@given(st.text())
def test_accepted_text_has_no_control_characters_and_encodes(value: str) -> None:
    if text_problem(value) is None:
        assert not any(_control(c) and c not in "\t\n\r" for c in value)
        value.encode("utf-8")  # fit text always encodes (Redis keys, PostgreSQL, logs, SOAP)
    else:
        assert any((_control(c) and c not in "\t\n\r") or 0xD800 <= ord(c) <= 0xDFFF
                   for c in value)
    if text_problem(value, single_line=True) is None:
        assert not any(_control(c) for c in value)


# -- JSON ---------------------------------------------------------------------------------------


def test_parse_json_ignores_brackets_inside_strings() -> None:
    text = json.dumps({"name": "[" * 500 + "{" * 500, "list": [[[1]]]})
    assert parse_json(text)["list"] == [[[1]]]


def test_parse_json_accepts_the_maximum_depth_and_refuses_one_more() -> None:
    parse_json("[" * MAX_JSON_DEPTH + "]" * MAX_JSON_DEPTH)
    with pytest.raises(JsonInputError, match="nested more than 32"):
        parse_json("[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1))


@pytest.mark.parametrize(("text", "message"), [
    ('{"a":' * 2000, "nested more than 32 levels"),
    ("[" * 100_000, "nested more than 32 levels"),
    ('{"max_age_s": ' + "1" * 4301 + "}", "longer than 40 digits"),
    ('{"max_age_s": -' + "1" * 50 + "}", "longer than 40 digits"),
    ('{"x": 1.' + "5" * 100 + "}", "longer than 40 characters"),
    ('{"x": 1e999}', "too large"),
    ('{"x": NaN}', "NaN is not a JSON value"),
    ('{"x": -Infinity}', "-Infinity is not a JSON value"),
    ('{"x": ', "not valid JSON: Expecting value (line 1, column 7)"),
])
def test_parse_json_refuses_with_a_reason(text: str, message: str) -> None:
    with pytest.raises(JsonInputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_json(text)


def test_parse_json_refuses_bytes_that_are_not_utf8() -> None:
    with pytest.raises(JsonInputError, match="not UTF-8"):
        parse_json(b'{"name": "\xff"}')


@pytest.mark.parametrize(("body", "message"), [
    ('{"a":' * 2000, "The body is nested more than 32 levels deep."),
    ('{"trader_id": "t", "max_age_s": ' + "7" * 5000 + "}",
     "A number in the body is longer than 40 digits."),
    ('{"trader_id": "t", "max_age_s": NaN}', "NaN is not a JSON value."),
])
def test_bad_json_bodies_are_a_400_naming_the_body(client: FlaskClient, body: str,
                                                   message: str) -> None:
    doc = problem(post_json(client, "/v1/things", body), 400)
    assert doc["errors"] == {"body": [message]}
    assert doc["detail"] == message


def test_flask_get_json_has_the_same_limits(client: FlaskClient) -> None:
    doc = problem(post_json(client, "/v1/flask-json", "[" * 3000 + "]" * 3000), 400)
    assert "nested more than 32" in doc["detail"]
    resp = post_json(client, "/v1/flask-json", '{"a": [1]}')
    assert resp.get_json() == {"type": "dict"}


def test_lone_surrogate_in_a_body_is_a_400_naming_the_field(client: FlaskClient) -> None:
    doc = problem(post_json(client, "/v1/things", '{"trader_id": "t", "name": "a\\ud800b"}'),
                  400)
    assert doc["errors"] == {"name": ["Must be valid Unicode text (found the lone surrogate "
                                      "U+D800)."]}


def test_a_valid_body_still_loads(client: FlaskClient) -> None:
    resp = post_json(client, "/v1/things",
                     '{"trader_id": "t-1", "name": "Müller\\nGmbH", "max_age_s": 60}')
    assert resp.status_code == 200
    assert resp.get_json() == {"trader_id": "t-1", "name": "Müller\nGmbH", "max_age_s": 60}


# -- body size ----------------------------------------------------------------------------------


class Unreadable(io.RawIOBase):
    """A request body that fails the test if anything reads it."""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return 0

    def readinto(self, buffer: Any) -> int:
        raise AssertionError("the body was read")


def test_a_declared_length_over_the_limit_is_a_413_before_reading(client: FlaskClient) -> None:
    for path in ("/v1/things", "/v1/raw", "/healthz", "/v1/no-such-route"):
        resp = client.post(path, input_stream=Unreadable(),
                           headers={**AUTH, "Content-Type": "application/json"},
                           environ_overrides={"CONTENT_LENGTH": str(100 * 1024 * 1024)})
        doc = problem(resp, 413)
        assert doc["errors"] == {"body": [f"Larger than {LIMIT} bytes."]}
        assert doc["title"] == "Content too large"


def test_a_chunked_body_over_the_limit_is_a_413(client: FlaskClient) -> None:
    resp = client.post("/v1/raw", input_stream=io.BytesIO(b"x" * (LIMIT + 1)),
                       headers={**AUTH, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert problem(resp, 413)["errors"] == {"body": [f"Larger than {LIMIT} bytes."]}
    resp = client.post("/v1/raw", input_stream=io.BytesIO(b"x" * LIMIT),
                       headers={**AUTH, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.get_json() == {"size": LIMIT}


def test_a_route_may_take_more_and_only_that_route(client: FlaskClient) -> None:
    big = b"x" * (3 * LIMIT)
    resp = client.post("/v1/documents", data=big, headers=AUTH)
    assert resp.get_json() == {"size": 3 * LIMIT}
    resp = client.post("/v1/documents", input_stream=io.BytesIO(big),
                       headers={**AUTH, "Transfer-Encoding": "chunked"},
                       environ_overrides={"wsgi.input_terminated": True})
    assert resp.get_json() == {"size": 3 * LIMIT}
    too_big = b"x" * (4 * LIMIT + 1)
    assert problem(client.post("/v1/documents", data=too_big, headers=AUTH), 413)["errors"] == {
        "body": [f"Larger than {4 * LIMIT} bytes."]}
    problem(client.post("/v1/raw", data=big, headers=AUTH), 413)


def test_the_limit_is_a_setting_defaulting_to_one_mebibyte(store: Store) -> None:
    app, _ = create_base_app(__name__, "inputs-test", {
        "TESTING": True, "INTERNAL_TOKEN": INTERNAL_TOKEN, "REDIS_STORE": store},
        title="inputs test")
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024
    bigger = build_app(store, MAX_BODY_BYTES=10 * LIMIT).test_client()
    assert bigger.post("/v1/raw", data=b"x" * (5 * LIMIT), headers=AUTH).status_code == 200


# -- paths and query strings -----------------------------------------------------------------


@pytest.mark.parametrize("path", [
    "/v1/things/a%00b", "/v1/things/a%1Bb", "/v1/things/a%7Fb", "/v1/things/a%0Ab",
    "/healthz%00", "/v1/nowhere/%00", "/openapi.json%00",
])
def test_control_characters_in_the_path_are_a_400_naming_the_path(client: FlaskClient,
                                                                 path: str) -> None:
    doc = problem(client.get(path, headers=AUTH), 400)
    assert list(doc["errors"]) == ["path"]
    assert "control characters" in doc["errors"]["path"][0]
    assert "\x00" not in doc["instance"] and doc["instance"].startswith("/")


@pytest.mark.parametrize("path", [b"/v1/things/a\xed\xa0\x80b", b"/v1/things/a\xffb", b"/v1/\xc3"])
def test_a_path_that_is_not_utf8_is_a_400(client: FlaskClient, path: bytes) -> None:
    # As a WSGI server passes it (bytes as latin-1); the test client would decode it first.
    resp = client.get("/", headers=AUTH, environ_overrides={"PATH_INFO": path.decode("latin-1")})
    doc = problem(resp, 400)
    assert doc["errors"] == {"path": ["Must be UTF-8 (percent-encoded)."]}


def test_a_clean_path_with_letters_of_any_script_passes(client: FlaskClient) -> None:
    resp = client.get("/v1/things/m%C3%BCnchen-%E2%82%AC?q=K%C3%B8benhavn", headers=AUTH)
    assert resp.get_json() == {"id": "münchen-€", "q": "København"}


@pytest.mark.parametrize(("query", "errors"), [
    ("q=a%00b", {"q": ["Must not contain control characters (found U+0000)."]}),
    ("q=ok&other=%FF", {"other": ["Must be UTF-8 (percent-encoded)."]}),
    ("q=%ED%A0%80", {"q": ["Must be UTF-8 (percent-encoded)."]}),
    ("a%00b=1", {"query": ["A parameter name: Must not contain control characters "
                           "(found U+0000)."]}),
    ("DE89370400440532013000=%00", {"query": ["Must not contain control characters "
                                              "(found U+0000)."]}),
])
def test_query_strings_are_checked_parameter_by_parameter(client: FlaskClient, query: str,
                                                        errors: dict) -> None:
    doc = problem(client.get("/v1/things/x?" + query, headers=AUTH), 400)
    assert doc["errors"] == errors
    assert "DE8937" not in json.dumps(doc)  # a name that could be personal data is not repeated


def test_the_path_check_comes_before_authentication(client: FlaskClient) -> None:
    problem(client.get("/v1/things/a%00b"), 400)
    problem(client.get("/v1/things/ab"), 401)
