"""flask-smorest wiring: the OpenAPI document from the marshmallow schemas, at ``/openapi.json``,
and Swagger UI for it at ``/docs`` (its files from the swagger-ui-py package, served by the app
itself: no outside CDN, and no inline script, so the page works under ``default-src 'self'``).

:class:`Api` routes every error through :mod:`shared.errors`, and :class:`Blueprint` makes
request-validation failures a 400 (flask-smorest's default is 422), so that every service has
one error shape, documented as :class:`ProblemSchema`. Its parser reads JSON bodies with
:func:`shared.inputs.parse_json` (limits on depth and number size).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import flask
import flask_smorest
import marshmallow as ma
from flask import Flask, Response, current_app, render_template_string, send_from_directory, url_for
from webargs import core
from webargs.flaskparser import FlaskParser, is_json_request
from werkzeug.exceptions import HTTPException, NotFound

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
    init_docs(app)
    return api


# -- Swagger UI ---------------------------------------------------------------------------------

DOCS_EXTENSION = "trace30.docs"
#: Where the page is; its files are under ``DOCS_PATH + "/assets/"``.
DOCS_PATH = "/docs"
#: The headers of the page and its files: the gateway dashboard's policy (scripts, styles and
#: connections from the app only, no framing; the page has no inline script), and ``data:``
#: images, the only addition: Swagger UI's style sheet draws its icons (a select's arrow, the
#: spinner) as ``data:`` SVG, which as an image runs no script.
DOCS_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
#: The Swagger UI files the page loads (of swagger-ui-py's ``static`` folder); nothing else of
#: the package is served.
SWAGGER_UI_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js", "favicon-32x32.png"})
#: Starts Swagger UI on the document named by the page (``data-spec-url``). No validator badge:
#: Swagger UI would otherwise load it from validator.swagger.io.
DOCS_SCRIPT = """\
window.addEventListener("DOMContentLoaded", function () {
  var root = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: root.dataset.specUrl,
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null
  });
});
"""
DOCS_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ title }}: API documentation</title>
<link rel="icon" type="image/png" href="{{ asset('favicon-32x32.png') }}">
<link rel="stylesheet" href="{{ asset('swagger-ui.css') }}">
</head>
<body>
<main id="swagger-ui" data-spec-url="{{ spec_url }}"></main>
<script src="{{ asset('swagger-ui-bundle.js') }}"></script>
<script src="{{ asset('trace30-docs.js') }}"></script>
</body>
</html>
"""


def swagger_ui_dir() -> Path:
    """The folder of Swagger UI's files in the installed swagger-ui-py (not imported)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of trace30)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


def _with_headers(response: Response) -> Response:
    response.headers.update(DOCS_HEADERS)
    return response


def _docs_page() -> Response:
    page = render_template_string(
        DOCS_PAGE, title=current_app.config["API_TITLE"],
        spec_url=url_for("api-docs.openapi_json"),
        asset=lambda name: url_for("trace30_docs_asset", filename=name))
    return _with_headers(Response(page, mimetype="text/html"))


def _docs_asset(filename: str) -> Response:
    if filename == "trace30-docs.js":
        return _with_headers(Response(DOCS_SCRIPT, mimetype="text/javascript"))
    if filename not in SWAGGER_UI_FILES:
        raise NotFound()
    response = send_from_directory(current_app.extensions[DOCS_EXTENSION], filename,
                                   max_age=86400)
    return _with_headers(response)


def init_docs(app: Flask) -> None:
    """Serve Swagger UI for the app's ``/openapi.json`` at ``/docs``, open like the document
    (outside ``/v1``, so no token), and out of the document itself."""
    app.extensions[DOCS_EXTENSION] = swagger_ui_dir()
    app.add_url_rule(DOCS_PATH, "trace30_docs", _docs_page, methods=["GET"])
    app.add_url_rule(DOCS_PATH + "/assets/<path:filename>", "trace30_docs_asset", _docs_asset,
                     methods=["GET"])
