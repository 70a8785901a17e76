"""Input rules every service applies to what a client sends, before any of it is used.

What reaches a service's code must be text that every later step can handle: the SOAP call to
VIES, a Redis key, a PostgreSQL column (which refuses NUL), a JSON log line, an HTML page. A
value that one of them cannot take used to surface there as a 500. So, in one place:

- **Text fields** (:class:`Text`, :class:`Email`): refuse control characters (C0 except the line
  breaks tab, line feed and carriage return; DEL; C1), lone surrogates (``"\\ud800"`` is valid
  JSON but no Unicode text, and UTF-8 cannot encode it) and over-long values (every text field
  has a ``max_length``); ids (``single_line=True, blank=False``) also refuse tab and line breaks,
  and blank values. The 400 names the field, and never repeats the value (it may be an IBAN or
  an e-mail address).
- **Bodies** are limited before they are read: ``TRACE30_MAX_BODY_BYTES`` (1 MiB) becomes
  Flask's ``MAX_CONTENT_LENGTH``; a larger ``Content-Length`` is a 413 before a byte is read,
  and a chunked body (no ``Content-Length``) is cut off with a 413 once it passes the limit.
  A route that needs more (issue 12's documents) says so with :func:`max_body`; a whole service
  with its own ``TRACE30_MAX_BODY_BYTES``.
- **JSON** is parsed by :func:`parse_json`: UTF-8 only, at most :data:`MAX_JSON_DEPTH` levels
  deep, numbers of at most :data:`MAX_NUMBER_CHARS` characters, no ``NaN``/``Infinity``. Python's
  own parser raises ``RecursionError`` on deep nesting and ``ValueError`` on an integer of more
  than 4,300 digits; both were 500s.
- **Paths and query strings** are checked before routing answers (:func:`check_target`): not
  valid UTF-8, or holding control characters, is a 400 naming ``path`` or the parameter.

:func:`init_app` (called by :func:`shared.factory.create_base_app`) installs the body limit, the
target check and the JSON provider; :class:`shared.openapi.Blueprint` parses request bodies with
:func:`parse_json`.
"""

from __future__ import annotations

import json
import re
from array import array
from collections.abc import Callable, Mapping
from itertools import accumulate
from typing import Any, TypeVar
from urllib.parse import unquote_to_bytes

import flask
import marshmallow as ma
from flask import Flask, current_app, request
from flask.json.provider import DefaultJSONProvider
from marshmallow import fields, validate
from werkzeug.exceptions import RequestEntityTooLarge

from shared.errors import BadRequest, ContentTooLarge, handle_trace30_error

#: Deepest nesting of arrays and objects a JSON body may have (trace30's requests use 3).
MAX_JSON_DEPTH = 32
#: Longest number literal in a JSON body, in characters (2**128 has 39 digits). Python refuses
#: integers of more than 4,300 digits with a ValueError; no field of trace30 needs more than 20.
MAX_NUMBER_CHARS = 40

#: Control characters refused in any text: C0 but tab (U+0009), line feed (U+000A) and carriage
#: return (U+000D, CR LF being the newline of pasted text), DEL (U+007F) and C1 (U+0080..U+009F,
#: which only appear in mis-decoded text). NUL among them: PostgreSQL cannot store it.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: In single-line text (ids, numbers, codes) tab and line breaks are refused too.
_CONTROL_SINGLE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")
#: A query parameter name that may be repeated in an error (others could be personal data).
_PLAIN_NAME = re.compile(r"[a-z_]{1,40}")

_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")
#: Opening brackets count +1, closing ones -1 (0xff read as a signed byte).
_DEPTH_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")

F = TypeVar("F", bound=Callable[..., Any])


# -- text ------------------------------------------------------------------------------------------


def text_problem(value: str, *, single_line: bool = False) -> str | None:
    """What makes ``value`` unfit as text, in words for a client, or None when it is fit.

    The message names the offending code point, never the value.

    >>> text_problem("Boulangerie Martin SAS") is None
    True
    >>> text_problem("a\\x00b")
    'Must not contain control characters (found U+0000).'
    >>> text_problem("4 rue du Four\\nBâtiment B") is None, text_problem("x\\ty", single_line=True)
    (True, 'Must not contain control characters (found U+0009).')
    >>> text_problem("a\\ud800b")
    'Must be valid Unicode text (found the lone surrogate U+D800).'
    """
    pattern = _CONTROL_SINGLE_LINE if single_line else _CONTROL
    found = pattern.search(value)
    if found:
        return f"Must not contain control characters (found U+{ord(found.group()):04X})."
    if not value.isascii():
        found = _SURROGATE.search(value)
        if found:
            code = ord(found.group())
            return f"Must be valid Unicode text (found the lone surrogate U+{code:04X})."
    return None


def check_text(value: str, *, max_length: int, min_length: int = 0, single_line: bool = False,
               blank: bool = True) -> None:
    """Raise :class:`marshmallow.ValidationError` unless ``value`` is fit text of that length.

    >>> check_text("   ", max_length=10, blank=False)
    Traceback (most recent call last):
    ...
    marshmallow.exceptions.ValidationError: Must not be blank.
    """
    problem = text_problem(value, single_line=single_line)
    if problem:
        raise ma.ValidationError(problem)
    if not blank and not value.strip():
        raise ma.ValidationError("Must not be blank.")
    if len(value) > max_length:
        raise ma.ValidationError(f"Longer than maximum length {max_length}.")
    if len(value) < min_length:
        raise ma.ValidationError(f"Shorter than minimum length {min_length}.")


class Text(fields.String):
    """A string that is fit text (see :func:`text_problem`) of at most ``max_length`` characters.

    ``single_line=True`` also refuses tab and line breaks (ids, numbers, codes); ``blank=False``
    refuses a value of white space only (it would be stored as ``""`` once trimmed). The
    lengths are ``validate.Length`` validators, so the OpenAPI document shows them.
    """

    def __init__(self, *, max_length: int, min_length: int = 0, single_line: bool = False,
                 blank: bool = True, **kwargs: Any) -> None:
        given = kwargs.pop("validate", None)
        extra = [given] if callable(given) else list(given or [])
        min_length = max(min_length, 0 if blank else 1)
        length = validate.Length(min=min_length or None, max=max_length)
        super().__init__(validate=[length, *extra], **kwargs)
        self.single_line = single_line
        self.blank = blank

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        problem = text_problem(text, single_line=self.single_line)
        if problem:
            raise ma.ValidationError(problem)
        if not self.blank and not text.strip():
            raise ma.ValidationError("Must not be blank.")
        return text


class Email(Text, fields.Email):
    """An e-mail address that is fit text (its OpenAPI format stays ``email``)."""

    def __init__(self, *, max_length: int = 254, **kwargs: Any) -> None:
        super().__init__(max_length=max_length, single_line=True, blank=False, **kwargs)


# -- JSON ------------------------------------------------------------------------------------------


class JsonInputError(ValueError):
    """A request body that is not JSON trace30 accepts; the message says why, for a client."""


def _json_depth(raw: bytes) -> int:
    """How deep the arrays and objects of ``raw`` nest (brackets inside strings ignored).

    >>> _json_depth(b'{"a": [1, {"b": "[[["}]}'), _json_depth(b"1")
    (3, 0)
    """
    steps = _NOT_BRACKET.sub(b"", _JSON_STRING.sub(b"", raw)).translate(_DEPTH_STEPS)
    return max(accumulate(array("b", steps)), default=0)


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError(f"A number in the body is longer than {MAX_NUMBER_CHARS} digits.")
    return int(text)


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JsonInputError(
            f"A number in the body is longer than {MAX_NUMBER_CHARS} characters.")
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise JsonInputError("A number in the body is too large.")
    return value


def _parse_constant(name: str) -> Any:
    raise JsonInputError(f"{name} is not a JSON value.")


def parse_json(data: bytes | str) -> Any:
    """``data`` as a JSON document, or :class:`JsonInputError` saying what is wrong with it.

    Cheap on ordinary bodies: the depth is only measured when there are more opening brackets
    than :data:`MAX_JSON_DEPTH`, and the number hooks only see numbers.

    >>> parse_json(b'{"trader_id": "t-1", "max_age_s": 60}')
    {'trader_id': 't-1', 'max_age_s': 60}
    >>> parse_json('{"a":' * 2000)
    Traceback (most recent call last):
    ...
    shared.inputs.JsonInputError: The body is nested more than 32 levels deep.
    >>> parse_json('{"max_age_s": ' + "9" * 5000 + "}")
    Traceback (most recent call last):
    ...
    shared.inputs.JsonInputError: A number in the body is longer than 40 digits.
    """
    if isinstance(data, str):
        text, raw = data, data.encode("utf-8", "surrogatepass")
    else:
        raw = data
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as e:
            raise JsonInputError(f"The body is not UTF-8 (byte {e.start}).") from None
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _json_depth(raw) > MAX_JSON_DEPTH:
        raise JsonInputError(f"The body is nested more than {MAX_JSON_DEPTH} levels deep.")
    try:
        return json.loads(text, parse_int=_parse_int, parse_float=_parse_float,
                          parse_constant=_parse_constant)
    except JsonInputError:
        raise
    except json.JSONDecodeError as e:
        raise JsonInputError(
            f"The body is not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})."
        ) from None
    except RecursionError:  # a limit lower than MAX_JSON_DEPTH: should not happen, never a 500
        raise JsonInputError("The body is nested too deeply.") from None


def load_json_body(data: bytes) -> Any:
    """The request body parsed by :func:`parse_json`, or a 400 naming ``body``.

    An empty body is ``None`` (webargs then reports the missing fields).
    """
    if not data:
        return None
    try:
        return parse_json(data)
    except JsonInputError as e:
        raise BadRequest(str(e), errors={"body": [str(e)]}) from None


class Request(flask.Request):
    """Flask's request whose ``get_json()`` says what is wrong with a refused body (Flask's own
    says only "Bad Request" outside debug mode)."""

    def on_json_loading_failed(self, e: ValueError | None) -> Any:
        if isinstance(e, JsonInputError):
            raise BadRequest(str(e), errors={"body": [str(e)]}) from None
        return super().on_json_loading_failed(e)


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON provider with :func:`parse_json`'s limits on ``request.get_json()``."""

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        if kwargs:
            return super().loads(s, **kwargs)
        return parse_json(s)


# -- body size -------------------------------------------------------------------------------------

_MAX_BODY_ATTR = "_trace30_max_body_bytes"
_LIMIT_KEY = "trace30.max_body_bytes"


def max_body(limit_bytes: int | Callable[[Mapping[str, Any]], int]) -> Callable[[F], F]:
    """Let one route take bodies up to ``limit_bytes`` instead of ``TRACE30_MAX_BODY_BYTES``
    (or a function of the app's config giving it: a configurable limit).

    Put it on the view function, under the route decorator (e.g. the document upload of issue
    12: ``@max_body(10 * 1024 * 1024)``); the reverse proxy's limit for that location must be
    raised as well (nginx ``client_max_body_size`` in a ``location`` block).
    """

    def decorator(view: F) -> F:
        setattr(view, _MAX_BODY_ATTR, limit_bytes)
        return view

    return decorator


def _body_limit() -> int:
    view = current_app.view_functions.get(request.endpoint or "")
    route_limit = getattr(view, _MAX_BODY_ATTR, None)
    if callable(route_limit):
        route_limit = route_limit(current_app.config)
    limit = int(current_app.config["MAX_CONTENT_LENGTH"] if route_limit is None else route_limit)
    request.environ[_LIMIT_KEY] = limit
    request.max_content_length = limit  # Flask 3.1: per request; Werkzeug's streams obey it
    return limit


def _too_large(limit: int) -> ContentTooLarge:
    return ContentTooLarge(
        f"The request body is larger than {limit} bytes, the most this route accepts.",
        errors={"body": [f"Larger than {limit} bytes."]},
    )


def check_body_size() -> None:
    """Refuse a declared ``Content-Length`` over the limit before any byte of it is read.

    A chunked body (no ``Content-Length``) shows its size only when read: at most one byte more
    than the limit is read (and kept for the view), and more than the limit is a 413. Werkzeug
    alone would hand the view the first ``limit`` bytes and drop the rest without a word.
    """
    limit = _body_limit()
    length = request.content_length
    if length is not None:
        if length > limit:
            raise _too_large(limit)
        return
    if request.environ.get("wsgi.input_terminated"):  # set by servers that decode chunked
        request.max_content_length = limit + 1
        if len(request.get_data(cache=True)) > limit:
            raise _too_large(limit)


def _handle_too_large(_: RequestEntityTooLarge) -> Any:
    limit = request.environ.get(_LIMIT_KEY) or request.max_content_length
    return handle_trace30_error(_too_large(int(limit)) if limit else ContentTooLarge())


# -- paths and query strings -----------------------------------------------------------------------


def _wsgi_bytes(value: str) -> bytes:
    return value.encode("latin-1", "replace")  # WSGI strings carry bytes as latin-1


def _target_problem(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "Must be UTF-8 (percent-encoded)."
    return text_problem(text, single_line=True)


def check_target() -> None:
    """Refuse a path or query string holding what no trace30 route takes (see module doc).

    Runs before routing answers, so ``/v1/traders/a%00b`` is a 400 naming ``path`` (never a
    database error), on every route: the API, health, OpenAPI and the ``/ops`` dashboard.
    """
    environ = request.environ
    path = environ.get("PATH_INFO", "")
    if not (path.isascii() and path.isprintable()):
        problem = _target_problem(_wsgi_bytes(path))
        if problem:
            raise BadRequest(f"The path is not acceptable: {problem}",
                             errors={"path": [problem]})
    query = environ.get("QUERY_STRING", "")
    if not query or ("%" not in query and query.isascii() and query.isprintable()):
        return
    errors: dict[str, list[str]] = {}
    for part in query.split("&"):
        name, _, value = part.partition("=")
        raw_name = unquote_to_bytes(name.replace("+", " "))
        name_problem = _target_problem(raw_name)
        value_problem = _target_problem(unquote_to_bytes(value.replace("+", " ")))
        if name_problem:
            errors.setdefault("query", []).append("A parameter name: " + name_problem)
        elif value_problem:
            plain = _PLAIN_NAME.fullmatch(raw_name.decode("utf-8"))
            key = plain.group() if plain else "query"
            errors.setdefault(key, []).append(value_problem)
    if errors:
        raise BadRequest("The query string is not acceptable: " + ", ".join(sorted(errors)),
                         errors=errors)


def init_app(app: Flask) -> None:
    """Install the body limit, the path and query check, and the limited JSON parser."""
    app.config["MAX_CONTENT_LENGTH"] = app.config["MAX_BODY_BYTES"]
    app.json = JSONProvider(app)
    app.request_class = Request
    app.before_request(check_target)
    app.before_request(check_body_size)
    app.register_error_handler(RequestEntityTooLarge, _handle_too_large)
