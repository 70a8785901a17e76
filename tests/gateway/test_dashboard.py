"""The staff dashboard (/ops): sign-in, lists, the evidence pages, the two actions, the guards.

Verifications go through the real services and simulators of the session's suite (as in
test_flow.py); the pagination test fills the evidence log through ``EvidenceLog.save``.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import re
import time
import zlib
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient

from services.gateway import access, create_app, shutdown
from services.gateway.dashboard import PAGE_SIZE, SANDBOX_SESSION_SECRET, SECURITY_HEADERS
from services.gateway.evidence import EvidenceLog, verifications_table
from shared.errors import ConfigError
from shared.retention import purge_after
from tests.gateway.conftest import API_KEY, OPS_KEY
from tests.gateway.evidence_fixtures import make_record
from tests.gateway.test_flow import GOOD, IBAN, post, submission

TRADER = GOOD["trader_id"]
HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(resp) -> str:
    match = _CSRF.search(resp.get_data(as_text=True))
    assert match, "the page has no CSRF token"
    return match.group(1)


def sign_in(client: FlaskClient, key: str = OPS_KEY):
    """Sign in through the form; the answer to the POST."""
    token = csrf_of(client.get("/ops/login"))
    return client.post("/ops/login", data={"api_key": key, "csrf_token": token})


def page(client: FlaskClient, url: str) -> str:
    resp = client.get(url, headers=HTML)
    assert resp.status_code == 200, (url, resp.status_code, resp.get_data(as_text=True)[:500])
    assert resp.mimetype == "text/html"
    return resp.get_data(as_text=True)


def evidence(app: Flask) -> EvidenceLog:
    return app.extensions["trace30.gateway"].evidence


def session_of(set_cookie: str) -> dict:
    """The (signed, not encrypted) payload of the dashboard's session cookie."""
    value = set_cookie.split(";")[0].split("=", 1)[1]
    compressed = value.startswith(".")
    payload = value.lstrip(".").split(".")[0]
    raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    return json.loads(zlib.decompress(raw) if compressed else raw)


@pytest.fixture
def staff(client: FlaskClient) -> FlaskClient:
    """The test client, signed in with the ops key."""
    assert sign_in(client).status_code == 303
    return client


def test_signed_out_requests_go_to_the_login_form(client: FlaskClient) -> None:
    for url in ("/ops/", f"/ops/traders/{TRADER}", "/ops/verifications/x"):
        resp = client.get(url, headers=HTML)
        assert resp.status_code == 302 and resp.headers["Location"] == "/ops/login", url
    resp = client.post(f"/ops/traders/{TRADER}/reverify")
    assert resp.status_code == 302 and resp.headers["Location"] == "/ops/login"
    form = page(client, "/ops/login")
    assert 'name="api_key"' in form and 'type="password"' in form


def test_sign_in_with_an_ops_key_and_sign_out(client: FlaskClient) -> None:
    resp = sign_in(client)
    assert resp.status_code == 303 and resp.headers["Location"] == "/ops/"
    cookie = resp.headers["Set-Cookie"]
    attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
    assert {"httponly", "expires", "path"} <= attributes
    assert "SameSite=Strict" in cookie and "Path=/ops" in cookie
    assert "secure" not in attributes  # sandbox: plain http on loopback
    stored = session_of(cookie)
    assert set(stored) == {"sid", "signed_in_at", "csrf", "_permanent"}  # no key, no client
    assert OPS_KEY not in cookie and OPS_KEY not in json.dumps(stored)
    home = page(client, "/ops/")
    assert "signed in as <strong>client:staff</strong>, <span class=\"role\">admin</span>" in home
    # the review queue is the first link of the navigation
    nav = home[home.index("<nav>"):home.index("</nav>")]
    assert nav.index('href="/ops/?verdict=needs_review"') < nav.index('href="/ops/"')
    out = client.post("/ops/logout", data={"csrf_token": csrf_of(client.get("/ops/"))})
    assert out.status_code == 303 and out.headers["Location"] == "/ops/login"
    assert client.get("/ops/").status_code == 302


def test_signing_out_revokes_every_copy_of_the_cookie(gateway: Flask,
                                                      client: FlaskClient) -> None:
    """Finding 9: a copy of the session cookie kept working for 8 h after signing out."""
    cookie = sign_in(client).headers["Set-Cookie"].split(";")[0]
    thief = gateway.test_client(use_cookies=False)  # sends the copied cookie as it is
    assert thief.get("/ops/", headers={**HTML, "Cookie": cookie}).status_code == 200
    client.post("/ops/logout", data={"csrf_token": csrf_of(client.get("/ops/"))})
    resp = thief.get("/ops/", headers={**HTML, "Cookie": cookie})
    assert resp.status_code == 302 and resp.headers["Location"] == "/ops/login"
    # a validly signed cookie naming a session id that was never opened is no better
    forger = gateway.test_client()
    with forger.session_transaction("/ops/") as sess:
        sess.update(sid="made-up", signed_in_at=int(time.time()))
    assert forger.get("/ops/").status_code == 302


def test_a_key_without_the_ops_scope_is_refused(client: FlaskClient) -> None:
    resp = sign_in(client, API_KEY)  # scopes: onboarding only
    assert resp.status_code == 401
    body = resp.get_data(as_text=True)
    assert "no &#39;ops&#39; scope" in body and API_KEY not in body
    assert client.get("/ops/").status_code == 302


def test_a_wrong_key_is_refused_and_not_echoed(client: FlaskClient) -> None:
    key = "wrong-key-that-must-not-come-back-7f3a"
    resp = sign_in(client, key)
    assert resp.status_code == 401
    body = resp.get_data(as_text=True)
    assert "That API key is not valid." in body and key not in body
    assert 'name="api_key"' in body  # the form again
    assert client.get("/ops/").status_code == 302


def test_a_client_that_loses_ops_or_disappears_is_signed_out(gateway: Flask,
                                                            staff: FlaskClient) -> None:
    clients = gateway.extensions[access.EXTENSION]
    assert staff.get("/ops/").status_code == 200
    gateway.extensions[access.EXTENSION] = [
        dataclasses.replace(c, scopes=frozenset({"batch"})) if c.id == "staff" else c
        for c in clients]
    assert staff.get("/ops/").status_code == 302
    gateway.extensions[access.EXTENSION] = clients
    assert sign_in(staff).status_code == 303 and staff.get("/ops/").status_code == 200
    gateway.extensions[access.EXTENSION] = [c for c in clients if c.id != "staff"]
    assert staff.get("/ops/").status_code == 302


def test_a_sign_in_lasts_eight_hours_at_most(staff: FlaskClient) -> None:
    with staff.session_transaction("/ops/") as sess:
        assert sess["sid"]
        sess["signed_in_at"] -= 7 * 3600
    assert staff.get("/ops/").status_code == 200
    with staff.session_transaction("/ops/") as sess:
        sess["signed_in_at"] -= 3600 + 60
    assert staff.get("/ops/").status_code == 302


def test_the_list_counts_verdicts_and_filters_the_review_queue(staff: FlaskClient) -> None:
    assert post(staff, GOOD, wait=15).get_json()["verdict"] == "verified"
    review = post(staff, submission(trader_id="blocked-vat", vat_number="FR400"),
                  wait=15).get_json()
    assert review["verdict"] == "needs_review"
    rejected = post(staff, submission(trader_id="bad-vat", vat_number="FR19812345677"),
                    wait=15).get_json()
    assert rejected["verdict"] == "rejected"

    home = page(staff, "/ops/")
    counts = dict(re.findall(r'id="count-(\w+)">(\d+)<', home))
    assert counts == {"verified": "1", "needs_review": "1", "rejected": "1", "pending": "0"}
    for trader_id in (TRADER, "blocked-vat", "bad-vat"):
        assert f'href="/ops/traders/{trader_id}"' in home
    assert "VAT_INVALID" in home and "ongoing" in home

    queue = page(staff, "/ops/?verdict=needs_review")
    assert "<h1>Review queue</h1>" in queue
    assert 'href="/ops/traders/blocked-vat"' in queue and "VAT_BLOCKED" in queue
    assert f'href="/ops/traders/{TRADER}"' not in queue
    assert 'href="/ops/traders/bad-vat"' not in queue

    found = page(staff, "/ops/?trader_id=bad-vat")
    assert 'href="/ops/traders/bad-vat"' in found and 'href="/ops/traders/blocked-vat"' not in found
    partial = page(staff, "/ops/?trader_id=bad")  # exact match only
    assert "/ops/traders/bad-vat" not in partial and "No traders" in partial
    assert page(staff, "/ops/?verdict=&trader_id=&page=").count('href="/ops/traders/') == 3


def test_pagination_newest_first_and_bad_query_values(gateway: Flask, staff: FlaskClient) -> None:
    log = evidence(gateway)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(PAGE_SIZE + 5):
        at = t0 + timedelta(minutes=i)
        log.save(make_record(f"v{i:03d}", f"trader-{i:03d}", created_at=at, settled_at=at,
                             checked_at=at,
                             verdict="pending" if i % 5 == 0 else "verified"))
    first = page(staff, "/ops/")
    listed = re.findall(r'href="/ops/traders/(trader-\d+)"', first)
    assert len(listed) == PAGE_SIZE
    assert listed[0] == f"trader-{PAGE_SIZE + 4:03d}" and listed == sorted(listed, reverse=True)
    assert "page 1 of 2" in first
    older = re.search(r'<a rel="next" href="/ops/\?after=([^"]+)">', first)
    assert older is not None  # a keyset cursor, not a page number
    second_page = page(staff, f"/ops/?after={older.group(1)}")
    second = re.findall(r'href="/ops/traders/(trader-\d+)"', second_page)
    assert second == ["trader-004", "trader-003", "trader-002", "trader-001", "trader-000"]
    assert "page 2 of 2" in second_page and 'rel="next"' not in second_page
    assert 'rel="first" href="/ops/"' in second_page
    pending = page(staff, "/ops/?verdict=pending")
    assert 'id="count-pending">11<' in pending
    assert len(re.findall(r'href="/ops/traders/trader-', pending)) == 11
    # a cursor is the list's own: another filter's, or a forged one, is a 400 naming it
    for query, field in (("verdict=approved", "verdict"), ("after=abc", "after"),
                         (f"verdict=pending&after={older.group(1)}", "after"),
                         (f"after={older.group(1)[:-2]}xx", "after"),
                         ("page=abc&after=x", "after")):
        resp = staff.get(f"/ops/?{query}")
        assert resp.status_code == 400, query
        assert resp.content_type == "application/problem+json"
        problem = resp.get_json()
        assert list(problem["errors"]) == [field] and field in problem["detail"]
    html = staff.get("/ops/?after=abc", headers=HTML)
    assert html.status_code == 400 and html.mimetype == "text/html"
    assert "<code>after</code>" in html.get_data(as_text=True)


def test_trader_page_shows_reasons_items_and_history(staff: FlaskClient) -> None:
    first = post(staff, submission(vat_number="FR400"), wait=15).get_json()
    second = post(staff, submission(vat_number="FR400", phone="+33 1 42 22 00 01"),
                  wait=15).get_json()
    assert first["id"] != second["id"] and second["verdict"] == "needs_review"
    html = page(staff, f"/ops/traders/{TRADER}")
    assert "Boulangerie Martin SAS" in html
    assert 'class="verdict verdict-needs_review"' in html
    blocked = re.search(r"<tr class=\"severity-warning\">\s*<td><code>VAT_BLOCKED</code></td>"
                        r"\s*<td>30\(1\)\(d\)</td>\s*<td>warning</td>\s*<td>VIES refuses", html)
    assert blocked, "the VAT_BLOCKED reason with its item, severity and message"
    for item in ("30(1)(a)", "30(1)(b)", "30(1)(c)", "30(1)(d)", "30(1)(e)"):
        assert f"<td>{item}</td>" in html
    history = re.findall(r'href="/ops/verifications/(\w+)"', html)
    assert history[0] == second["id"]  # the current verdict's evidence link
    assert history.index(second["id"]) < history.index(first["id"])  # newest first
    assert "Ongoing." in html
    assert "Re-verify now" in html and "Record end of relationship" in html
    assert IBAN not in html and "42 22 00" not in html and "boulangerie-martin.example" not in html


def test_verification_page_shows_the_evidence_never_the_iban(gateway: Flask,
                                                             staff: FlaskClient) -> None:
    body = post(staff, GOOD, wait=15).get_json()
    assert body["verdict"] == "verified"
    vid = body["id"]
    log = evidence(gateway)
    delivery = log.enqueue_webhook(client_id="shop", url="https://shop.example/hooks",
                                   event="verification.completed", payload={"event": "x"},
                                   verification_id=vid, trader_id=TRADER, tenant="default")
    log.record_attempt(delivery, status_code=503, error="HTTP 503 from receiver",
                       duration_ms=12.3, delivered=False,
                       next_attempt_at=datetime.now(UTC) + timedelta(minutes=5))

    html = page(staff, f"/ops/verifications/{vid}")
    vat, reg, pay = (body["checks"][k] for k in ("vat", "registry", "payment"))
    assert vat["consultation_number"]
    assert f'<code class="consultation">{vat["consultation_number"]}</code>' in html
    assert "SAS BOULANGERIE MARTIN" in html  # the name VIES returned
    url = reg["source"]["url"]
    assert url.startswith("https://") and f'<a class="source-url" href="{url}"' in html
    assert f'<code class="status-raw">{reg["status_raw"]}</code>' in html
    assert reg["registered_name"] in html
    assert pay["iban_masked"].startswith("FR") and pay["iban_masked"].endswith("7897")
    assert f'<code class="iban">{pay["iban_masked"]}</code>' in html
    assert "<code>checksum</code>" in html and "The IBAN check digits match" in html
    assert body["fingerprint"] in html and "seal verified" in html
    assert html.count("<details") == 5 and "raw JSON" in html
    assert "verification.completed" in html and "HTTP 503 from receiver" in html
    assert "<td>503</td>" in html
    # no IBAN, e-mail or phone number, not even masked ones, on any page
    for url in ("/ops/", f"/ops/traders/{TRADER}", f"/ops/verifications/{vid}",
                "/ops/?verdict=verified"):
        text = page(staff, url)
        assert IBAN not in text and "000300012345" not in text, url
        assert "boulangerie-martin.example" not in text and "42 22 00" not in text, url
        assert "+33" not in text and "FR-ID-778899" not in text, url

    with log.engine.begin() as conn:  # an altered seal is shown as such
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == vid)
                     .values(sealed_submission=Fernet(Fernet.generate_key())
                             .encrypt(b"{}").decode()))
    assert "seal BROKEN" in page(staff, f"/ops/verifications/{vid}")


def test_verification_page_lists_the_traders_with_the_same_identity(
        staff: FlaskClient) -> None:
    first = post(staff, GOOD, wait=15).get_json()
    html = page(staff, f"/ops/verifications/{first['id']}")
    assert "No other trader used the same payment account" in html
    other = post(staff, submission(trader_id="second-shop"), wait=15).get_json()
    html = page(staff, f"/ops/verifications/{other['id']}")
    assert f'<a class="linked-trader" href="/ops/traders/{TRADER}">' in html
    assert "account, registration, vat" in html


def test_a_hostile_trader_name_is_escaped(staff: FlaskClient) -> None:
    name = "<script>alert(1)</script> Boulangerie"
    body = post(staff, submission(trader_id="xss-trader", name=name,
                                  payment={"iban": IBAN, "account_holder": name}),
                wait=15).get_json()
    assert body["state"] == "settled"
    for url in ("/ops/", "/ops/traders/xss-trader", f"/ops/verifications/{body['id']}"):
        html = page(staff, url)
        assert "<script>" not in html, url
        assert "&lt;script&gt;alert(1)&lt;/script&gt; Boulangerie" in html, url


def test_posts_need_the_csrf_token(gateway: Flask, staff: FlaskClient) -> None:
    post(staff, GOOD, wait=15)
    log = evidence(gateway)
    before = [r.id for r in log.history(TRADER, tenant="default")]
    token = csrf_of(staff.get(f"/ops/traders/{TRADER}"))
    for data in ({}, {"csrf_token": "not-the-token"}, {"csrf_token": token[:-1]}):
        for action, form in (("reverify", {}), ("end", {"confirm": "yes"})):
            resp = staff.post(f"/ops/traders/{TRADER}/{action}", data={**form, **data})
            assert resp.status_code == 400, (action, data)
            assert resp.content_type == "application/problem+json"
            assert "csrf_token" in resp.get_json()["errors"]
    html = staff.post(f"/ops/traders/{TRADER}/reverify", headers=HTML)
    assert html.status_code == 400 and html.mimetype == "text/html"
    assert "security token" in html.get_data(as_text=True)
    assert [r.id for r in log.history(TRADER, tenant="default")] == before
    assert log.trader_summaries(trader_id=TRADER, tenant="default")[0].ended_at is None
    # signing in needs the token too
    other = gateway.test_client()
    assert other.post("/ops/login", data={"api_key": OPS_KEY}).status_code == 400
    # and signing out
    assert staff.post("/ops/logout").status_code == 400
    assert staff.get("/ops/").status_code == 200


def test_reverify_action_makes_a_new_verification(gateway: Flask, staff: FlaskClient) -> None:
    first = post(staff, GOOD, wait=15).get_json()
    token = csrf_of(staff.get(f"/ops/traders/{TRADER}"))
    resp = staff.post(f"/ops/traders/{TRADER}/reverify", data={"csrf_token": token})
    assert resp.status_code == 303
    location = resp.headers["Location"]
    new_id = location.rsplit("/", 1)[1]
    assert location == f"/ops/verifications/{new_id}" and new_id != first["id"]
    history = evidence(gateway).history(TRADER, tenant="default")
    assert [r.id for r in history] == [new_id, first["id"]]
    # the marketplace's verification, not staff's: it replaces the marketplace's cached
    # verdict and its webhooks go to the marketplace
    assert history[0].client_id == "shop" and history[0].verdict == "verified"
    assert 'class="verdict verdict-verified"' in page(staff, location)
    # the audit trail: who did it, and the verification it made
    trail = evidence(gateway).actions(TRADER, tenant="default")
    assert [(a["actor"], a["action"], a["verification_id"]) for a in trail] == [
        ("client:staff", "reverify", new_id)]
    html = page(staff, f"/ops/traders/{TRADER}")
    assert '<td class="actor">client:staff</td>' in html and f"<code>{new_id}</code>" in html
    unknown = staff.post("/ops/traders/nobody/reverify", data={"csrf_token": token})
    assert unknown.status_code == 404


def test_trader_page_shows_an_open_correction(gateway: Flask, staff: FlaskClient) -> None:
    post(staff, GOOD, wait=15)
    post(staff, submission(self_certification={"accepted": False}), wait=15)
    html = page(staff, f"/ops/traders/{TRADER}")
    assert "Correction requested (Art 30(3))" in html and "suspension is due" not in html


def test_end_of_relationship_action_records_the_end(gateway: Flask, staff: FlaskClient) -> None:
    post(staff, GOOD, wait=15)
    log = evidence(gateway)
    token = csrf_of(staff.get(f"/ops/traders/{TRADER}"))
    url = f"/ops/traders/{TRADER}/end"
    unconfirmed = staff.post(url, data={"csrf_token": token})
    assert unconfirmed.status_code == 400 and "confirm" in unconfirmed.get_json()["errors"]
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    later = staff.post(url, data={"csrf_token": token, "confirm": "yes", "ended_on": future})
    assert later.status_code == 400 and "ended_on" in later.get_json()["errors"]
    assert log.trader_summaries(trader_id=TRADER, tenant="default")[0].ended_at is None

    first = log.first_verification_at(TRADER, tenant="default")
    before = (first.date() - timedelta(days=1)).isoformat()
    early = staff.post(url, data={"csrf_token": token, "confirm": "yes", "ended_on": before})
    assert early.status_code == 400 and "ended_on" in early.get_json()["errors"]
    assert log.trader_summaries(trader_id=TRADER, tenant="default")[0].ended_at is None

    day = first.date().isoformat()  # the day it was first verified: from then on
    resp = staff.post(url, data={"csrf_token": token, "confirm": "yes", "ended_on": day})
    assert resp.status_code == 303 and resp.headers["Location"] == f"/ops/traders/{TRADER}"
    ended_at = log.trader_summaries(trader_id=TRADER, tenant="default")[0].ended_at
    assert ended_at == first
    html = page(staff, f"/ops/traders/{TRADER}")
    assert f"Ended {first:%Y-%m-%d %H:%M:%S} UTC" in html
    # six calendar months on, from midnight UTC (shared.retention: month ends clamped)
    purge = purge_after(ended_at, 6)
    assert f'<span class="purge-after">{purge:%Y-%m-%d} 00:00:00 UTC</span>' in html
    assert "kept 6 calendar months" in html and "End of relationship recorded" in html
    assert "Record end of relationship" not in html  # not offered twice
    assert f"ended {day}" in page(staff, "/ops/")
    missing = staff.post("/ops/traders/nobody/end", data={"csrf_token": token, "confirm": "yes"})
    assert missing.status_code == 404


def test_security_headers_on_every_ops_response(staff: FlaskClient) -> None:
    answers = [staff.get("/ops/login"), staff.get("/ops/"), staff.get("/ops/?after=x"),
               staff.get("/ops/traders/nobody", headers=HTML), staff.get("/ops/nothing-here"),
               staff.get("/ops/assets/ops.css", buffered=True), staff.get("/ops/logout")]
    assert [a.status_code for a in answers] == [302, 200, 400, 404, 404, 200, 405]
    for resp in answers:
        for name, value in SECURITY_HEADERS.items():
            assert resp.headers.get(name) == value, (resp.request.path, name)
    assert answers[1].headers["Content-Security-Policy"] == (
        "default-src 'self'; frame-ancestors 'none'")
    assert answers[5].mimetype == "text/css"
    assert "Content-Security-Policy" not in staff.get("/healthz").headers  # /ops only


def test_unknown_trader_or_verification_is_404(staff: FlaskClient) -> None:
    for url in ("/ops/traders/nobody", "/ops/verifications/nope"):
        problem = staff.get(url)
        assert problem.status_code == 404 and problem.content_type == "application/problem+json"
        html = staff.get(url, headers=HTML)
        assert html.status_code == 404 and html.mimetype == "text/html"
        assert "404 · Not found" in html.get_data(as_text=True)
        assert "Traceback" not in html.get_data(as_text=True)
    routing = staff.get("/ops/no/such/page", headers=HTML)
    assert routing.status_code == 404 and routing.mimetype == "text/html"


def test_the_api_opens_no_session(gateway: Flask, client: FlaskClient) -> None:
    """Sessions are the dashboard's: ``/v1`` requests neither read nor write one."""
    from flask import Request

    interface = gateway.session_interface
    assert interface.open_session(gateway, Request.from_values("/v1/reasons")) is None
    assert interface.open_session(gateway, Request.from_values("/ops/")) is not None
    resp = client.get("/v1/reasons", headers={"Authorization": f"Bearer {API_KEY}"})
    assert resp.status_code == 200 and "Set-Cookie" not in resp.headers


def test_the_dashboard_is_not_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert paths and not [p for p in paths if p.startswith("/ops")]


def test_the_dashboard_queries_on_sqlite_and_postgresql(evidence_log: EvidenceLog) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    for i, verdict in enumerate(["verified", "needs_review", "needs_review", "rejected"]):
        at = t0 + timedelta(hours=i)
        evidence_log.save(make_record(f"v{i}", f"t{i}", verdict=verdict, created_at=at,
                                      settled_at=at, checked_at=at),
                          private_submission={"iban": IBAN} if i == 0 else None)
    running = make_record("v9", "t9", state="running", verdict=None, checked_at=None)
    evidence_log.save(running)
    # a trader without a current verification
    assert evidence_log.end_relationship("t9", t0, tenant="default")
    assert evidence_log.end_relationship("t1", t0 + timedelta(days=1), tenant="default")

    rows = evidence_log.trader_summaries(tenant="default")
    assert [r.trader_id for r in rows] == ["t3", "t2", "t1", "t0", "t9"]
    assert rows[0].current is not None and rows[0].current.id == "v3"
    assert rows[2].ended_at == t0 + timedelta(days=1) and rows[0].ended_at is None
    assert rows[-1].verdict is None and rows[-1].current is None and rows[-1].ended_at == t0
    review = evidence_log.trader_summaries(verdict="needs_review", limit=1, tenant="default")
    assert [r.trader_id for r in review] == ["t2"]
    review = evidence_log.trader_summaries(verdict="needs_review", after=review[-1].key(),
                                           limit=5, tenant="default")
    assert [r.trader_id for r in review] == ["t1"]
    # keyset pages, from each page's last trader, end to end: checked ones, then the rest
    pages, after = [], None
    while True:
        page = evidence_log.trader_summaries(tenant="default", after=after, limit=2)
        if not page:
            break
        pages.append([r.trader_id for r in page])
        after = page[-1].key()
    assert pages == [["t3", "t2"], ["t1", "t0"], ["t9"]]
    assert [r.trader_id for r in evidence_log.trader_summaries(trader_id="t0",
                                                               tenant="default")] == ["t0"]
    assert evidence_log.trader_summaries(trader_id="t", tenant="default") == []
    assert evidence_log.count_traders(tenant="default") == 5
    assert evidence_log.count_traders(verdict="needs_review", tenant="default") == 2
    assert evidence_log.count_traders(trader_id="t3", verdict="verified", tenant="default") == 0
    assert evidence_log.verdict_counts(tenant="default") == {
        "verified": 1, "needs_review": 2, "rejected": 1, "pending": 0}
    assert evidence_log.seal_intact("v0") is True
    assert evidence_log.seal_intact("v1") is None
    with evidence_log.engine.begin() as conn:
        conn.execute(sa.update(verifications_table).where(verifications_table.c.id == "v0")
                     .values(sealed_submission="gAAAA-not-a-token"))
    assert evidence_log.seal_intact("v0") is False


def test_outside_sandbox_the_session_secret_is_required(gateway_config: dict) -> None:
    base = {**gateway_config, "SANDBOX": False,
            "EVIDENCE_SEALING_KEYS": Fernet.generate_key().decode()}
    with pytest.raises(ConfigError, match="TRACE30_GATEWAY_SESSION_SECRET is not set"):
        create_app({**base, "GATEWAY_SESSION_SECRET": None})
    with pytest.raises(ConfigError, match="public sandbox secret"):
        create_app({**base, "GATEWAY_SESSION_SECRET": SANDBOX_SESSION_SECRET})
    with pytest.raises(ConfigError, match="too short"):
        create_app({**base, "GATEWAY_SESSION_SECRET": "short"})
    app = create_app({**base, "GATEWAY_SESSION_SECRET": "s" * 40})
    try:
        cookie = app.test_client().get("/ops/login").headers["Set-Cookie"]
    finally:
        shutdown(app)
    assert "; Secure" in cookie and "SameSite=Strict" in cookie


def test_the_verification_page_shows_the_address_corroboration_and_the_policy(
        staff: FlaskClient) -> None:
    from services.gateway.policy import DEFAULT_POLICY

    moved = post(staff, submission(trader_id="moved", address={
        "street": "12 rue des Jouets", "postcode": "69002", "city": "Lyon",
        "country_code": "FR"}), wait=15).get_json()
    html = page(staff, f"/ops/verifications/{moved['id']}")
    assert "<h2>Address corroboration</h2>" in html and "ADDRESS_MISMATCH" in html
    assert '<dd class="declared-address">12 rue des Jouets, 69002, Lyon, FR</dd>' in html
    assert '<tr class="address-mismatch"><td>register</td>' in html
    assert "4 RUE DU FOUR 75006 PARIS" in html  # what the register holds
    assert f'<code class="hash policy-hash">{DEFAULT_POLICY.sha256}</code>' in html

    sole = post(staff, submission(trader_id="sole", name="Martin Dupont", vat_number=None,
                                  registration={"not_registered": True}), wait=15).get_json()
    html = page(staff, f"/ops/verifications/{sole['id']}")
    assert "declared not registered" in html
    assert "No source other than the trader gave an address." in html
