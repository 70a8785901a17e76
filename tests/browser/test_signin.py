"""Sign-in, roles and accessibility of the staff dashboard in a real browser (issue 12, points
1 and 7): headless Chromium from the operating system, driven by Playwright."""

from __future__ import annotations

import re

import pytest
import sqlalchemy as sa
from playwright.sync_api import Page, expect

from services.gateway.evidence.schema import ops_sessions_table
from tests.browser import a11y
from tests.browser.conftest import ARTIFACTS, LiveGateway, save_artifacts
from tests.gateway.evidence_fixtures import make_record

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test value)
TRADER = "trader-browser-1"


def add(gw: LiveGateway, username: str, role: str, name: str) -> None:
    gw.evidence.add_staff(tenant="default", username=username, display_name=name, role=role,
                          password=PASSWORD)


def sign_in(page: Page, gw: LiveGateway, username: str, password: str = PASSWORD) -> None:
    page.goto(gw.url + "/ops/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in", exact=True).click()


@pytest.fixture
def trader(live_gateway: LiveGateway) -> str:
    live_gateway.evidence.save(make_record("v-browser-1", TRADER),
                               private_submission={"trader_id": TRADER})
    return TRADER


def test_a_reviewer_signs_in_and_sees_their_name_and_role(page: Page,
                                                          live_gateway: LiveGateway) -> None:
    add(live_gateway, "r.reviewer", "reviewer", "Rita Reviewer")
    sign_in(page, live_gateway, "r.reviewer")
    expect(page).to_have_url(live_gateway.url + "/ops/")
    who = page.locator("header .who")
    expect(who).to_contain_text("Rita Reviewer")
    expect(who).to_contain_text("staff:r.reviewer")
    expect(who.locator(".role")).to_have_text("reviewer")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(live_gateway.url + "/ops/login")
    page.goto(live_gateway.url + "/ops/")
    expect(page).to_have_url(live_gateway.url + "/ops/login")


def test_a_wrong_password_shows_an_error_and_opens_no_session(page: Page,
                                                              live_gateway: LiveGateway) -> None:
    add(live_gateway, "r.reviewer", "reviewer", "Rita Reviewer")
    sign_in(page, live_gateway, "r.reviewer", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    expect(page.get_by_label("Username")).to_have_value("r.reviewer")
    expect(page.get_by_label("Password")).to_have_value("")  # never sent back
    assert "not the password" not in page.content()
    page.goto(live_gateway.url + "/ops/")
    expect(page).to_have_url(live_gateway.url + "/ops/login")
    with live_gateway.evidence._read() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ops_sessions_table)
                            ).scalar_one() == 0


def test_a_viewer_sees_no_action_and_a_forged_post_is_refused(
        page: Page, live_gateway: LiveGateway, trader: str) -> None:
    add(live_gateway, "v.viewer", "viewer", "Victor Viewer")
    sign_in(page, live_gateway, "v.viewer")
    expect(page.locator("header .role")).to_have_text("viewer")
    page.goto(f"{live_gateway.url}/ops/traders/{trader}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(trader)
    expect(page.get_by_role("button", name="Re-verify now")).to_have_count(0)
    expect(page.get_by_role("button", name="Record end of relationship")).to_have_count(0)
    expect(page.locator(".role-note")).to_contain_text("Your role (viewer)")
    # the form, forged into the page with the session's valid CSRF token, is still refused
    page.evaluate("""([action]) => {
        const token = document.querySelector('input[name=csrf_token]').value;
        const form = document.createElement('form');
        form.method = 'post'; form.action = action;
        form.innerHTML = '<input type="hidden" name="csrf_token" value="' + token + '">';
        document.body.appendChild(form); form.submit();
    }""", [f"/ops/traders/{trader}/reverify"])
    expect(page.get_by_role("heading", level=1)).to_contain_text("Forbidden")
    expect(page.locator("body")).to_contain_text("needs the role reviewer")
    token = page.locator("input[name=csrf_token]").first.get_attribute("value")
    resp = page.request.post(f"{live_gateway.url}/ops/traders/{trader}/end",
                             form={"csrf_token": token or "", "confirm": "yes"})
    assert resp.status == 403
    assert live_gateway.evidence.actions(trader, tenant="default") == []


def test_a_reviewer_can_act_on_a_trader(page: Page, live_gateway: LiveGateway,
                                        trader: str) -> None:
    add(live_gateway, "r.reviewer", "reviewer", "Rita Reviewer")
    sign_in(page, live_gateway, "r.reviewer")
    page.goto(f"{live_gateway.url}/ops/traders/{trader}")
    page.get_by_label(re.compile("I confirm that the relationship")).check()
    page.get_by_role("button", name="Record end of relationship").click()
    expect(page.locator(".flash")).to_contain_text("End of relationship recorded")
    expect(page.locator("#actions")).to_contain_text("staff:r.reviewer")


def test_the_keyboard_reaches_the_sign_in_fields_in_order_with_visible_focus(
        page: Page, live_gateway: LiveGateway) -> None:
    page.goto(live_gateway.url + "/ops/login")
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.mouse.click(600, 5)  # a spot with nothing focusable: Tab starts from the top
    order = []
    for _ in range(6):
        page.keyboard.press("Tab")
        order.append(a11y.focused(page))
        if order[-1] in ("input#username", "input#password", "button:Sign in"):
            assert a11y.focus_is_visible(page), f"no visible focus on {order[-1]}"
        if order[-1] == "button:Sign in":
            break
    wanted = ["input#username", "input#password", "button:Sign in"]
    assert [f for f in order if f in wanted] == wanted, order
    # and the form signs in from the keyboard alone
    add(live_gateway, "k.keys", "reviewer", "Kim Keys")
    page.get_by_label("Username").focus()
    page.keyboard.type("k.keys")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    expect(page.locator("header .who")).to_contain_text("Kim Keys")


def test_the_pages_pass_the_basic_accessibility_checks(page: Page, live_gateway: LiveGateway,
                                                       trader: str) -> None:
    page.goto(live_gateway.url + "/ops/login")
    a11y.assert_accessible(page)
    sign_in(page, live_gateway, "nobody", "not the password")  # with its error message
    a11y.assert_accessible(page)
    for role in ("viewer", "admin"):
        add(live_gateway, f"a.{role}", role, f"A {role.title()}")
        page.context.clear_cookies()
        sign_in(page, live_gateway, f"a.{role}")
        for path in ("/ops/", "/ops/?verdict=needs_review", f"/ops/traders/{trader}",
                     "/ops/verifications/v-browser-1", "/ops/traders/no-such-trader"):
            page.goto(live_gateway.url + path)
            a11y.assert_accessible(page)


def test_the_accessibility_checks_find_what_is_wrong(page: Page) -> None:
    page.set_content("<html><body><h2>No h1</h2><h4>Skipped</h4><input id=x name=q>"
                     "<img src=a.png><button></button><a href=/x></a>"
                     "<span id=d></span><span id=d></span></body></html>")
    found = "\n".join(a11y.problems(page))
    for problem in ("no lang attribute", "exactly one <h1>, found 0",
                    "first heading is <h2>", "<h2> then <h4>",
                    "form control without a label: input#x[name=q]", "image without alt",
                    "button without a text", "link without a text", "id used 2 times: d"):
        assert problem in found, (problem, found)
    page.set_content('<html lang="en"><body><h1>Fine</h1><h2>Part</h2>'
                     '<label for="x">Query</label><input id="x"><label>Other <input></label>'
                     '<input aria-label="Third"><img src="a.png" alt=""></body></html>')
    assert a11y.problems(page) == []


def test_a_failing_browser_test_saves_a_screenshot_and_the_html(page: Page) -> None:
    page.set_content('<html lang="en"><body><h1>Saved page</h1></body></html>')
    png, html = save_artifacts(page, "tests/browser/self-check::artifacts")
    try:
        assert png.parent == ARTIFACTS and png.name == "tests_browser_self-check_artifacts.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert "<h1>Saved page</h1>" in html.read_text()
    finally:
        png.unlink()
        html.unlink()


@pytest.fixture
def strict(gateway_config: dict) -> dict:
    gateway_config.update(GATEWAY_SIGNIN_MAX_FAILURES=2, GATEWAY_SIGNIN_WINDOW_S=300)
    return gateway_config


def test_too_many_failed_attempts_are_refused_with_a_clear_message(
        strict: dict, page: Page, live_gateway: LiveGateway) -> None:
    add(live_gateway, "r.reviewer", "reviewer", "Rita Reviewer")
    for _ in range(2):
        sign_in(page, live_gateway, "r.reviewer", "not the password")
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    with page.expect_response(lambda r: r.request.method == "POST") as answer:
        sign_in(page, live_gateway, "r.reviewer")
    assert answer.value.status == 429 and answer.value.headers["retry-after"]
    expect(page.get_by_role("alert")).to_have_text(
        "Too many failed sign-in attempts. Try again in 5 minutes.")
    a11y.assert_accessible(page)
    page.goto(live_gateway.url + "/ops/")
    expect(page).to_have_url(live_gateway.url + "/ops/login")
