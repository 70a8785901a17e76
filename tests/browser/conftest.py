"""Browser tests: the gateway served for real on loopback, driven by Playwright for Python in
the operating system's headless Chromium (Debian ``chromium``, ``/usr/bin/chromium``; ``make
browser`` installs it). Playwright's own browser download is never used.

Fixtures:

- ``live_gateway``: the gateway app of ``gateway_config`` (the session's suite of services and
  simulators, a temporary SQLite evidence log, a private Redis prefix) served by werkzeug in a
  thread on a free loopback port; ``live_gateway.url`` and ``live_gateway.evidence``.
- ``browser`` (one per session) and ``page`` (a fresh context per test, so no cookie is
  shared). When a test fails, its page's screenshot and HTML are saved to
  ``tests/browser/artifacts/`` (git-ignored) and the paths printed in the report.

Without ``/usr/bin/chromium`` (or ``TRACE30_CHROMIUM``) every browser test fails, saying how
to install it: a browser test is never skipped.
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from flask import Flask
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from werkzeug.serving import BaseWSGIServer, make_server

from services.gateway import create_app, shutdown
from services.gateway.evidence import EvidenceLog
from tests.conftest import free_port

CHROMIUM = os.environ.get("TRACE30_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
#: How long Playwright waits for an element or a navigation, milliseconds.
TIMEOUT_MS = 15_000


@dataclass
class LiveGateway:
    """A gateway serving HTTP on loopback for a browser."""

    app: Flask
    url: str

    @property
    def evidence(self) -> EvidenceLog:
        return self.app.extensions["trace30.gateway"].evidence


@pytest.fixture
def live_gateway(gateway_config: dict) -> Iterator[LiveGateway]:
    app = create_app(gateway_config)
    port = free_port()
    server: BaseWSGIServer = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-gateway", daemon=True)
    thread.start()
    try:
        yield LiveGateway(app, f"http://127.0.0.1:{port}")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        shutdown(app)


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"No Chromium at {CHROMIUM}: run `make browser` (Debian: apt-get install "
                    "chromium), or set TRACE30_CHROMIUM to its path. Browser tests are never "
                    "skipped.", pytrace=False)
    browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                         args=["--no-sandbox", "--disable-dev-shm-usage"])
    yield browser
    browser.close()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


def save_artifacts(page: Page, name: str) -> list[Path]:
    """Save the page's screenshot and HTML as ``artifacts/<name>.png`` and ``.html``."""
    ARTIFACTS.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_")[:150]
    png, html = ARTIFACTS / f"{stem}.png", ARTIFACTS / f"{stem}.html"
    page.screenshot(path=str(png), full_page=True)
    html.write_text(page.content(), encoding="utf-8")
    return [png, html]


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        try:
            saved = save_artifacts(page, request.node.nodeid)
            request.node.add_report_section("teardown", "browser artifacts",
                                            "\n".join(map(str, saved)))
            print("browser artifacts:", *saved)
        except Exception as e:  # the test's own failure is what matters
            print(f"browser artifacts not saved: {e!r}")
    context.close()
