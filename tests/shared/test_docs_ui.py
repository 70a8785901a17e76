"""Swagger UI at ``/docs`` on the gateway and every service (:func:`shared.openapi.init_docs`):
the page and every file it names come from the app itself (no outside host), under the
dashboard's ``default-src 'self'`` policy, open without a token like ``/openapi.json``, and
nothing but the page's own files is served from the package."""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from services.gateway.dashboard import SECURITY_HEADERS
from shared.errors import PROBLEM_JSON
from shared.openapi import DOCS_HEADERS, swagger_ui_dir
from tests.deploy.test_hosts import SERVICES, settings


class _References(HTMLParser):
    """Every ``src`` and ``href`` of a page, and the ``data-spec-url``."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.spec_url: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
            if name == "data-spec-url":
                self.spec_url = value


@pytest.fixture
def make_app(tmp_path: Path) -> Iterator[Any]:
    made: list[tuple[Any, Flask]] = []

    def make(service: str, sandbox: bool = True) -> Flask:
        module = importlib.import_module(f"services.{service}")
        app = module.create_app(settings(tmp_path, sandbox))
        made.append((module, app))
        return app

    yield make
    for module, app in made:
        if hasattr(module, "shutdown"):
            module.shutdown(app)


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize("sandbox", [True, False])
def test_the_page_and_everything_it_loads_come_from_the_app(make_app: Any, service: str,
                                                           sandbox: bool) -> None:
    client = make_app(service, sandbox).test_client()
    page = client.get("/docs")  # no token: the documentation is as open as /openapi.json
    assert (page.status_code, page.mimetype) == (200, "text/html")
    html = page.get_data(as_text=True)
    assert "http://" not in html and "https://" not in html
    assert page.headers["Content-Security-Policy"] == DOCS_HEADERS["Content-Security-Policy"]
    assert "<script>" not in html  # only script files: no inline script under the policy

    refs = _References()
    refs.feed(html)
    assert len(refs.urls) == 4  # the icon, the style sheet, Swagger UI and its start-up script
    mimetypes = set()
    for url in refs.urls:
        assert url.startswith("/docs/assets/"), url
        with client.get(url) as asset:
            assert asset.status_code == 200, url
            assert asset.data, url
            assert asset.headers["X-Content-Type-Options"] == "nosniff"
            mimetypes.add(asset.mimetype)
    assert mimetypes == {"image/png", "text/css", "text/javascript"}

    assert refs.spec_url == "/openapi.json"
    spec = client.get(refs.spec_url).get_json()
    assert spec["paths"] and not [p for p in spec["paths"] if p.startswith("/docs")]


def test_the_policy_is_the_dashboards_with_data_images() -> None:
    """The page meets the gateway's own policy, with ``data:`` images (Swagger UI's icons) as
    the one addition: the same sources of script, style and connections, no framing."""
    dashboard = SECURITY_HEADERS["Content-Security-Policy"].split("; ")
    docs = DOCS_HEADERS["Content-Security-Policy"].split("; ")
    assert [d for d in docs if d not in dashboard] == ["img-src 'self' data:"]
    assert [d for d in dashboard if d not in docs] == []


def test_the_start_up_script_turns_off_the_outside_validator(make_app: Any) -> None:
    script = make_app("vat").test_client().get("/docs/assets/trace30-docs.js")
    text = script.get_data(as_text=True)
    assert "validatorUrl: null" in text and "SwaggerUIBundle(" in text


@pytest.mark.parametrize("path", [
    "/docs/assets/index.html",  # Swagger UI's own page, with an inline script and a petstore URL
    "/docs/assets/swagger-initializer.js",
    "/docs/assets/../__init__.py",
    "/docs/assets/%2e%2e/core.py",
    "/docs/assets/LICENSE",
    "/docs/assets/",
])
def test_nothing_else_of_the_package_is_served(make_app: Any, path: str) -> None:
    assert (swagger_ui_dir() / "index.css").is_file()  # the package is there, the files refused
    resp = make_app("registry").test_client().get(path)
    assert resp.status_code == 404, path
    assert resp.mimetype == PROBLEM_JSON
