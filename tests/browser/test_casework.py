"""The reviewer's casework in a real browser (issue 12, point 7): headless Chromium from the
operating system, driven by Playwright, against a live gateway on loopback.

- a reviewer works a ``needs_review`` trader to ``verified`` with an uploaded identity document;
- a reviewer requests a correction, the correction time passes, the marketplace is told the
  suspension is due and confirms it, and the statement of reasons says how to complain;
- a complaint against a reviewer's rejection is decided by another reviewer, never by the one
  who took the contested decision;
- every casework page passes the basic accessibility checks, and the review form is worked
  with the keyboard, its focus visible.

What a marketplace does (submitting traders, confirming a suspension, filing a complaint) goes
through the gateway's API; what staff do goes through the browser. Webhooks are read from the
outbox (the marketplace's URL is never called in these tests).
"""

from __future__ import annotations

import hashlib
import io
import re
from datetime import date, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient
from playwright.sync_api import FilePayload, Page, expect

from services.gateway.reasons import ITEMS
from services.gateway.verifications import RetryLoop
from tests.browser.a11y import assert_accessible, focus_is_visible, focused
from tests.browser.conftest import LiveGateway
from tests.gateway.casework_util import (
    GOOD,
    HOOK_URL,
    TRADER,
    hooks,
    needs_review,
    pass_correction_time,
    verify,
)
from tests.gateway.conftest import ONBOARDING, api_keys

pytestmark = [pytest.mark.browser, pytest.mark.slow]

PASSWORD = "correct horse battery staple"  # noqa: S105 (a test value)
SHOP = GOOD["trader_id"]
NAME = GOOD["name"]


def tiny_pdf(text: str = "Identity card") -> bytes:
    """A small, well-formed one-page PDF (objects, cross-reference table and trailer)."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


@pytest.fixture
def marketplace_hooks(gateway_config: dict[str, Any]) -> dict[str, Any]:
    """The marketplace's API client has a webhook URL: casework webhooks go to the outbox."""
    gateway_config["GATEWAY_API_KEYS"] = api_keys(HOOK_URL)
    return gateway_config


@pytest.fixture
def gw(marketplace_hooks: dict[str, Any], live_gateway: LiveGateway) -> LiveGateway:
    return live_gateway


@pytest.fixture
def api(gw: LiveGateway) -> FlaskClient:
    """The marketplace's and the automation's side: the gateway's API."""
    return gw.app.test_client()


def add_staff(gw: LiveGateway, username: str, name: str, role: str = "reviewer") -> None:
    gw.evidence.add_staff(tenant="default", username=username, display_name=name, role=role,
                          password=PASSWORD)


def sign_in(page: Page, gw: LiveGateway, username: str) -> None:
    page.context.clear_cookies()
    page.goto(gw.url + "/ops/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in", exact=True).click()
    expect(page.locator("header .who")).to_contain_text(f"staff:{username}")


def open_trader(page: Page, gw: LiveGateway, trader_id: str) -> None:
    page.goto(f"{gw.url}/ops/traders/{trader_id}")
    expect(page.get_by_role("heading", level=1)).to_contain_text(trader_id)


def trader_api(api: FlaskClient, trader_id: str) -> dict[str, Any]:
    resp = api.get(f"/v1/traders/{trader_id}", headers=ONBOARDING)
    assert resp.status_code == 200, resp.get_json()
    body: dict[str, Any] = resp.get_json()
    return body


def test_a_reviewer_works_a_needs_review_trader_to_verified_with_a_document(
        page: Page, gw: LiveGateway, api: FlaskClient) -> None:
    needs_review(api)
    add_staff(gw, "r.reviewer", "Rita Reviewer")
    sign_in(page, gw, "r.reviewer")

    # the queue: the trader, with the time it has waited
    page.get_by_role("link", name="Waiting longest").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Review queue")
    row = page.locator("table.queue tbody tr").filter(has_text=TRADER)
    expect(row).to_have_count(1)
    expect(row.locator("td.waited")).to_have_text(re.compile(r"^\d+ min$"))
    assert_accessible(page)
    row.get_by_role("link", name=TRADER).click()
    expect(page.get_by_role("heading", level=1)).to_contain_text(TRADER)
    expect(page.locator("#review")).to_contain_text("Items the decision covers")
    assert_accessible(page)

    # the identity document, uploaded and listed with its SHA-256 and name check
    pdf = tiny_pdf()
    digest = hashlib.sha256(pdf).hexdigest()
    docs = page.locator("#documents")
    docs.get_by_label("File").set_input_files(
        files=FilePayload(name="identity-card.pdf", mimeType="application/pdf", buffer=pdf))
    docs.get_by_label("Kind").select_option("identity_document")
    docs.get_by_label(re.compile("Issuing country")).fill("FR")
    docs.get_by_label("Expires on").fill((date.today() + timedelta(days=3 * 365)).isoformat())
    docs.get_by_label("Name shown on the document").fill(NAME)
    docs.get_by_role("button", name="Upload document").click()
    document = page.locator("#documents tr.document")
    expect(document).to_have_count(1)
    expect(document.locator("code.sha256")).to_have_attribute("title", digest)
    expect(document.locator("code.sha256")).to_contain_text(digest[:16])
    expect(document.locator(".name-check")).to_contain_text("matches the trader's name")
    expect(document.locator(".actor")).to_have_text("staff:r.reviewer")
    assert_accessible(page)

    # the decision: 30(1)(b) on the document, 30(1)(c) (the shared account), a note, Approve
    review = page.locator("#review")
    review.get_by_label(re.compile(r"30\(1\)\(b\)")).check()
    review.get_by_label(re.compile(r"30\(1\)\(c\)")).check()
    review.get_by_label(re.compile("identity document")).check()
    review.get_by_label("Note").fill("ID card matches; the account is shared with the owner's "
                                     "other shop.")
    review.get_by_role("button", name="Approve").click()
    expect(page.locator(".flash")).to_contain_text("the verdict is now verified")
    expect(page.locator("p.current")).to_contain_text("verified")
    expect(page.locator(".trader-state")).to_have_text("active")
    expect(page.locator("#review")).to_contain_text("No decision pending")
    timeline = page.locator("#timeline")
    expect(timeline.locator("tr.event-document")).to_contain_text(
        "document uploaded: identity_document by staff:r.reviewer")
    expect(timeline.locator("tr.event-decision")).to_contain_text(
        "decision approve of b, c by staff:r.reviewer")
    expect(timeline).to_contain_text("manual verification: verified")
    assert_accessible(page)

    page.get_by_role("link", name="Waiting longest").click()
    expect(page.locator("p.empty")).to_have_text("Nothing to review.")
    body = trader_api(api, TRADER)
    assert body["verdict"] == "verified" and body["source"] == "manual", body
    assert body["items"][ITEMS["b"]] == "verified" and body["items"][ITEMS["c"]] == "verified"


def test_the_review_form_is_worked_with_the_keyboard_with_visible_focus(
        page: Page, gw: LiveGateway, api: FlaskClient) -> None:
    needs_review(api)
    # the marketplace sent the register extract it holds
    sent = api.post(f"/v1/traders/{TRADER}/documents", headers=ONBOARDING,
                    content_type="multipart/form-data",
                    data={"file": (io.BytesIO(tiny_pdf("Extract")), "extract.pdf",
                                   "application/pdf"),
                          "kind": "register_extract", "issuing_country": "FR",
                          "name_shown": NAME})
    assert sent.status_code == 201, sent.get_json()
    document_id = sent.get_json()["id"]
    add_staff(gw, "k.keys", "Kim Keys")
    sign_in(page, gw, "k.keys")
    open_trader(page, gw, TRADER)
    review = page.locator("#review")
    controls = [f"input#review-item-{k}" for k in "abcde"] + [
        f"input#review-doc-{document_id}", "textarea#review-note", "button:Approve",
        "button:Reject", "button:Request information"]
    # from the control before the form, Tab walks the form in order, each focus visible
    page.locator("#document-name").focus()
    page.keyboard.press("Tab")  # the upload button
    seen = []
    for _ in range(len(controls) + 2):
        page.keyboard.press("Tab")
        seen.append(focused(page))
        if seen[-1] in controls:
            assert focus_is_visible(page), f"no visible focus on {seen[-1]}"
        if seen[-1] == controls[-1]:
            break
    assert [f for f in seen if f in controls] == controls, seen
    # and the keyboard alone decides: ask for information on 30(1)(a), with a note
    page.locator("#review-item-a").focus()
    page.keyboard.press("Space")
    expect(review.locator("#review-item-a")).to_be_checked()
    for _ in range(5):  # (b) to (e), the document
        page.keyboard.press("Tab")
    page.keyboard.press("Space")
    expect(review.locator(f"#review-doc-{document_id}")).to_be_checked()
    page.keyboard.press("Tab")
    expect(review.locator("#review-note")).to_be_focused()
    page.keyboard.type("Send the current register extract.")
    for _ in range(3):
        page.keyboard.press("Tab")
    expect(review.get_by_role("button", name="Request information")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator(".flash")).to_contain_text("Decision recorded: request information")
    expect(page.locator(".trader-state")).to_have_text("correction_requested")
    expect(page.locator("#timeline tr.event-decision")).to_contain_text(
        "decision request_information of a by staff:k.keys: Send the current register extract.")
    assert_accessible(page)
    review_row = gw.evidence.reviews(TRADER, tenant="default")[0]
    assert review_row["document_ids"] == [document_id]


def test_a_correction_comes_due_the_marketplace_suspends_and_the_statement_says_how_to_complain(
        page: Page, gw: LiveGateway, api: FlaskClient) -> None:
    assert verify(api, GOOD)["verdict"] == "verified"
    add_staff(gw, "r.reviewer", "Rita Reviewer")
    sign_in(page, gw, "r.reviewer")
    open_trader(page, gw, SHOP)
    expect(page.locator(".trader-state")).to_have_text("active")

    correction = page.locator("#correction")
    correction.get_by_label(re.compile(r"30\(1\)\(a\)")).check()
    correction.get_by_label(re.compile(r"30\(1\)\(d\)")).check()
    correction.get_by_label(re.compile("Reasons")).fill(
        "The registered address changed: give the new one and a register extract.")
    tomorrow = date.today() + timedelta(days=1)
    correction.get_by_label(re.compile("Due on")).fill(tomorrow.isoformat())
    correction.get_by_role("button", name="Request correction").click()
    expect(page.locator(".flash")).to_contain_text("Correction requested")
    expect(page.locator(".trader-state")).to_have_text("correction_requested")
    expect(page.locator("p.correction-open")).to_contain_text("The registered address changed")
    expect(page.locator(".suspension-due")).to_have_count(0)
    expect(page.locator("#timeline")).to_contain_text(
        "statement of reasons: correction request (staff:r.reviewer)")
    assert_accessible(page)
    assert [h["event"] for h in hooks(gw.app, SHOP)][-1] == "trader.correction_requested"
    early = api.post(f"/v1/traders/{SHOP}/suspension", headers=ONBOARDING)
    assert early.status_code == 409 and "not due yet" in early.get_json()["detail"]

    # the due time passes; the sweeper tells the marketplace, once
    pass_correction_time(gw.app, SHOP)
    page.reload()
    expect(page.locator(".suspension-due")).to_have_text("the time is up: suspension is due")
    loop = RetryLoop(gw.app.extensions["trace30.gateway"])
    loop.run_once()
    loop.run_once()
    due = [h for h in hooks(gw.app, SHOP) if h["event"] == "trader.suspension_due"]
    assert len(due) == 1, [h["event"] for h in hooks(gw.app, SHOP)]
    assert due[0]["verification"]["correction"]["items"] == ["a", "d"]
    page.reload()
    expect(page.locator("p.correction-open")).to_contain_text("the marketplace was told")

    # the marketplace confirms the suspension
    resp = api.post(f"/v1/traders/{SHOP}/suspension", headers=ONBOARDING)
    assert resp.status_code == 200, resp.get_json()
    statement_id = resp.get_json()["statement"]["id"]
    page.reload()
    state = page.locator("#state")
    expect(state.get_by_role("heading", level=2)).to_have_text("State (Art 30(3))")
    expect(state.locator(".trader-state")).to_have_text("suspended")
    expect(page.get_by_role("button", name="Reinstate")).to_be_visible()
    assert_accessible(page)
    assert trader_api(api, SHOP)["trader"]["state"] == "suspended"

    # its statement of reasons: the legal ground and how to complain
    page.locator("#timeline").get_by_role(
        "link", name=re.compile("statement of reasons: suspension")).click()
    expect(page).to_have_url(f"{gw.url}/ops/statements/{statement_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text("Statement of reasons")
    expect(page.locator(".statement-id")).to_have_text(statement_id)
    expect(page.locator(".legal-ground")).to_contain_text("30(3)")
    expect(page.locator("#facts")).to_contain_text("The registered address changed")
    expect(page.locator("#redress")).to_contain_text(re.compile("complain", re.I))
    assert_accessible(page)


def test_a_complaint_is_decided_by_another_reviewer_than_the_one_it_contests(
        page: Page, gw: LiveGateway, api: FlaskClient) -> None:
    needs_review(api)
    add_staff(gw, "r.reviewer", "Rita Reviewer")
    add_staff(gw, "s.second", "Sam Second")
    sign_in(page, gw, "r.reviewer")
    open_trader(page, gw, TRADER)
    review = page.locator("#review")
    review.get_by_label(re.compile(r"30\(1\)\(c\)")).check()
    review.get_by_label("Note").fill("The account belongs to another business.")
    review.get_by_role("button", name="Reject").click()
    expect(page.locator(".flash")).to_contain_text("the verdict is now rejected")
    rejection = page.locator("#timeline").get_by_role(
        "link", name=re.compile(r"statement of reasons: rejection \(staff:r.reviewer\)"))
    expect(rejection).to_have_count(1)
    statement_id = (rejection.get_attribute("href") or "").rsplit("/", 1)[-1]

    # the marketplace files the trader's complaint against the rejection
    resp = api.post(f"/v1/traders/{TRADER}/complaints", headers=ONBOARDING,
                    json={"statement_id": statement_id,
                          "text": "The account is ours: the other shop is our own."})
    assert resp.status_code == 201, resp.get_json()
    complaint_id = resp.get_json()["id"]

    # the reviewer who rejected sees it but may not decide it
    page.get_by_role("link", name="Complaints").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Open complaints")
    row = page.locator("table.complaints tbody tr").filter(has_text=complaint_id)
    expect(row).to_contain_text("staff:r.reviewer")
    expect(row.locator("td.waited")).to_have_text(re.compile(r"^\d+ min$"))
    assert_accessible(page)
    row.get_by_role("link", name=complaint_id).click()
    expect(page.locator("#decision")).to_contain_text(
        "You took the contested decision: another person decides this complaint.")
    expect(page.get_by_role("button", name="Uphold")).to_have_count(0)
    assert_accessible(page)
    token = page.locator("input[name=csrf_token]").first.get_attribute("value") or ""
    forged = page.request.post(f"{gw.url}/ops/complaints/{complaint_id}/decision",
                               form={"csrf_token": token, "outcome": "rejected",
                                     "note": "My decision stands."})
    assert forged.status == 403
    assert "other than the one who took the contested decision" in forged.text()

    # another reviewer decides it
    sign_in(page, gw, "s.second")
    page.get_by_role("link", name="Complaints").click()
    page.locator("table.complaints").get_by_role("link", name=complaint_id).click()
    expect(page.locator(".complaint-status")).to_have_text("open")
    expect(page.locator("blockquote")).to_have_text(
        "The account is ours: the other shop is our own.")
    assert_accessible(page)
    page.get_by_label("Note").fill("The bank statement shows the same owner.")
    page.get_by_role("button", name="Uphold").click()
    expect(page.locator(".flash")).to_contain_text("Complaint upheld")
    expect(page.locator(".complaint-status")).to_have_text("upheld")
    expect(page.locator("#decision")).to_contain_text(
        "upheld by staff:s.second")
    expect(page.locator("#decision")).to_contain_text("The bank statement shows the same owner.")
    assert_accessible(page)
    decided = [h for h in hooks(gw.app, TRADER) if h["event"] == "complaint.decided"]
    assert len(decided) == 1 and decided[0]["complaint"]["status"] == "upheld"
    assert decided[0]["complaint"]["effect"] == "rejection_withdrawn"

    # the rejection is withdrawn: the trader is back for a person to decide
    page.get_by_role("link", name="Complaints").click()
    expect(page.locator("p.empty")).to_have_text("No open complaint.")
    page.get_by_role("link", name="Waiting longest").click()
    expect(page.locator("table.queue")).to_contain_text(TRADER)
    open_trader(page, gw, TRADER)
    expect(page.locator("#timeline")).to_contain_text("complaint upheld by staff:s.second")
    assert trader_api(api, TRADER)["verdict"] == "needs_review"
