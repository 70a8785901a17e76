"""flask-smorest wiring: the OpenAPI document from the marshmallow schemas, at ``/openapi.json``.

:class:`Api` routes every error through :mod:`shared.errors`, and :class:`Blueprint` makes
request-validation failures a 400 (flask-smorest's default is 422), so that every service has
one error shape, documented as :class:`ProblemSchema`. Its parser reads JSON bodies with
:func:`shared.inputs.parse_json` (limits on depth and number size).
"""

from __future__ import annotations

from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from flask import Flask
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException

from shared import errors, inputs

EXTENSION = "trace30.api"


class ProblemSchema(ma.Schema):
    """An RFC 9457 problem document, the body of every error response."""

    type = ma.fields.String(metadata={"description": "URI of the problem type"})
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    request_id = ma.fields.String()
    errors = ma.fields.Dict(metadata={"description": "Messages per field at fault"})


class Api(flask_smorest.Api):
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


class Blueprint(flask_smorest.Blueprint):
    """A flask-smorest Blueprint whose validation errors are 400 problem+json."""

    ARGUMENTS_PARSER = _Parser()


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
