"""flask-smorest wiring: the OpenAPI document from the marshmallow schemas, at ``/openapi.json``.

:class:`Api` routes every error through :mod:`shared.errors`, and :class:`Blueprint` makes
request-validation failures a 400 (flask-smorest's default is 422), so that every service has
one error shape, documented as :class:`ProblemSchema`. Its parser reads JSON bodies with
:func:`shared.inputs.parse_json` (limits on depth and number size).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import flask
import flask_smorest
import marshmallow as ma
from flask import Flask
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from shared import errors, inputs

EXTENSION = "trace30.api"

#: A view function, which flask-smorest's decorators hand back registered or wrapped.
View = TypeVar("View", bound=Callable[..., Any])


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document, the body of every error response."""

    type = ma.fields.String(metadata={"description": "URI of the problem type"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    request_id = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Messages per field at fault"})


class Api(flask_smorest.Api):  # type: ignore[misc]  # flask-smorest is untyped
    """flask-smorest's Api with problem+json errors."""

    ERROR_SCHEMA = ProblemSchema

    def handle_http_exception(self, error: HTTPException) -> Any:
        return errors.handle_http_exception(error)


class _Parser(FlaskParser):
    DEFAULT_VALIDATION_STATUS = 400

    def _raw_load_json(self, req: flask.Request) -> Any:
        """The JSON body through :func:`shared.inputs.parse_json` (depth and number limits):
        a malformed body is a 400 naming ``body``, never a RecursionError or ValueError."""
        if not is_json_request(req):
            return core.missing
        body = inputs.load_json_body(req.get_data(cache=True))
        return core.missing if body is None else body


class Blueprint(flask_smorest.Blueprint):  # type: ignore[misc]  # flask-smorest is untyped
    """A flask-smorest Blueprint whose validation errors are 400 problem+json.

    The decorators are flask-smorest's, given types (it has none): each hands back the view
    it decorates, so ``mypy --strict`` checks the views' own signatures.
    """

    ARGUMENTS_PARSER = _Parser()

    def route(self, rule: str, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().route(rule, **options)
        return decorator

    def get(self, rule: str, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().get(rule, **options)
        return decorator

    def post(self, rule: str, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().post(rule, **options)
        return decorator

    def put(self, rule: str, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().put(rule, **options)
        return decorator

    def patch(self, rule: str, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().patch(rule, **options)
        return decorator

    def delete(self, rule: str, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().delete(rule, **options)
        return decorator

    def before_request(self, view: View) -> View:
        registered: View = super().before_request(view)
        return registered

    def arguments(self, schema: Any, **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().arguments(schema, **options)
        return decorator

    def response(self, status_code: int | str, schema: Any = None,
                 **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().response(status_code, schema, **options)
        return decorator

    def doc(self, **kwargs: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().doc(**kwargs)
        return decorator

    def alt_response(self, status_code: int | str, response: Any = None,
                     **options: Any) -> Callable[[View], View]:
        decorator: Callable[[View], View] = super().alt_response(status_code, response,
                                                                 **options)
        return decorator


def init_app(app: Flask, *, title: str, version: str = "1.0.0", description: str = "") -> Api:
    """Create the service's :class:`Api` and serve its document at ``/openapi.json``."""
    app.config.setdefault("API_TITLE", title)
    app.config.setdefault("API_VERSION", version)
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {"description": description},
            "components": {
                "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}
            },
            "security": [{"bearer": []}],
        },
    )
    api = Api(app)
    app.extensions[EXTENSION] = api
    return api
