"""Swagger UI at the gateway's ``/docs`` in a real browser: every operation of ``/openapi.json``
rendered, every request to the gateway itself (no CDN, no validator badge), and no
Content-Security-Policy violation under the dashboard's ``default-src 'self'``."""

from __future__ import annotations

import pytest
import requests
from playwright.sync_api import ConsoleMessage, Page, Request, expect

from tests.browser.conftest import LiveGateway

pytestmark = [pytest.mark.browser, pytest.mark.slow]

#: Records the page's Content-Security-Policy violations before any of its scripts runs.
_CSP_LISTENER = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", function (e) {
  window.__cspViolations.push(e.violatedDirective + " " + e.blockedURI);
});
"""
_METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def test_swagger_ui_renders_every_operation_from_the_gateway(live_gateway: LiveGateway,
                                                             page: Page) -> None:
    spec = requests.get(live_gateway.url + "/openapi.json", timeout=10).json()
    operations = [(method.upper(), path) for path, item in spec["paths"].items()
                  for method in item if method in _METHODS]
    assert len(operations) > 10

    requested: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requested.append(r.url) if isinstance(r, Request) else None)
    page.on("console", lambda m: errors.append(m.text)
            if isinstance(m, ConsoleMessage) and m.type == "error" else None)
    page.add_init_script(_CSP_LISTENER)

    page.goto(live_gateway.url + "/docs")
    expect(page.locator(".opblock").first).to_be_visible()
    expect(page.locator(".opblock")).to_have_count(len(operations))
    shown = {(b.locator(".opblock-summary-method").inner_text().strip(),
              b.locator(".opblock-summary-path").get_attribute("data-path"))
             for b in page.locator(".opblock").all()}
    assert shown == set(operations)
    expect(page.locator(".info .title")).to_contain_text("trace30")

    # An operation opens with its parameters and the "Try it out" button (same origin).
    verifications = page.locator(".opblock-post", has=page.locator(
        '[data-path="/v1/verifications"]')).first
    verifications.locator(".opblock-summary").click()
    expect(verifications.get_by_role("button", name="Try it out")).to_be_visible()

    assert requested and all(url.startswith(live_gateway.url + "/") for url in requested), [
        url for url in requested if not url.startswith(live_gateway.url + "/")]
    assert page.evaluate("window.__cspViolations") == []
    assert not [e for e in errors if "Content Security Policy" in e], errors
