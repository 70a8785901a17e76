"""The compliance staff's dashboard (``/ops``): the evidence behind every verdict, in a browser.

Server-rendered HTML (Jinja templates in ``templates/ops/``, autoescaped; no JavaScript, no
outside assets; one stylesheet from the blueprint's static folder). It is not part of the ``/v1``
API and not in the OpenAPI document.

- **Sign-in**: a named staff member signs in with a username and password (``trace30 staff
  add``; argon2id hashes in the ``staff`` table, :mod:`services.gateway.evidence.staff`), and
  every action is recorded under their name (``staff:<username>``) with their role
  (``viewer`` reads; ``reviewer`` and ``admin`` act). For automation, an API key of a
  configured client (``TRACE30_GATEWAY_API_KEYS``) holding the ``ops`` scope still signs in, as
  ``client:<id>`` with the role ``admin``. Failed attempts are limited per account and per
  client IP (:mod:`services.gateway.signin`; 429 with ``Retry-After``). The session lives in the
  evidence log (``ops_sessions``); the cookie, signed with ``TRACE30_GATEWAY_SESSION_SECRET``,
  keeps only its random id (HttpOnly, SameSite=Strict, Secure outside sandbox, path ``/ops``,
  8 hours from sign-in at most). Every request checks again that the staff member is still
  active (or the client still configured with ``ops``) and takes the role from the account.
- **CSRF**: every POST form carries the session's token, compared with ``hmac.compare_digest``;
  a missing or wrong one is a 400 and nothing is done.
- **Tenants**: staff see the traders of their own tenant only (the staff account's, or the
  API client's ``Client.tenant``); a trader or verification of another tenant is a 404, as if
  it did not exist.
- **What is shown** is what the API shows (``Verifier.view``): the IBAN only masked as the
  payment check returns it, never e-mail or phone number; the only personal data in a URL is
  the trader id.
- **Errors** are the usual problem+json, or, for a client that prefers ``text/html``, a small
  HTML page with the same status. Every ``/ops`` response carries :data:`SECURITY_HEADERS`.
"""

from __future__ import annotations

import hmac
import json
import logging
import math
import secrets
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import marshmallow as ma
from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from marshmallow import fields, validate
from werkzeug.exceptions import HTTPException, InternalServerError

from services.gateway import access, actors, api, casework, cursors
from services.gateway.actors import Actor
from services.gateway.evidence import EndBeforeFirstVerification, EvidenceLog, StaffMember
from services.gateway.evidence.traders import SummaryKey
from services.gateway.reasons import ITEMS, Verdict
from services.gateway.sealing import SealingError
from services.gateway.signin import SigninLimits
from services.gateway.verifications import Verifier, certification_of
from shared import errors, retention
from shared.config import SETTINGS, require_secret
from shared.errors import BadRequest, Conflict, NotFound
from shared.logs import current_request_id

log = logging.getLogger(__name__)

PREFIX = "/ops"
#: Traders per page of the list.
PAGE_SIZE = 50
#: Verifications shown on a trader's page, newest first.
HISTORY_LIMIT = 100
#: How long a sign-in lasts, however active the session.
SESSION_LIFETIME = timedelta(hours=8)
#: The scope a client needs to sign in.
SCOPE = "ops"
#: The public secret used in sandbox (the setting's sandbox default), refused outside sandbox.
SANDBOX_SESSION_SECRET: str = SETTINGS["GATEWAY_SESSION_SECRET"].sandbox_default
MIN_SECRET_LENGTH = 32

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
}

#: What each Art 30(1) point asks for, as the trader page labels it.
ITEM_LABELS = {
    ITEMS["a"]: "name, address, telephone number, e-mail",
    ITEMS["b"]: "identification document or eID",
    ITEMS["c"]: "payment account",
    ITEMS["d"]: "trade register, registration number, VAT number",
    ITEMS["e"]: "self-certification of compliant products",
}

bp = Blueprint(
    "ops", __name__, url_prefix=PREFIX, template_folder="templates",
    static_folder="templates/ops/assets", static_url_path="/assets",
)

_PUBLIC_ENDPOINTS = frozenset({"ops.login", "ops.static"})


# -- configuration ------------------------------------------------------------------------------


def check_secret(secret: str | None, *, sandbox: bool) -> str:
    """The session secret to use, or raise :class:`ConfigError` saying what to set.

    >>> check_secret(None, sandbox=True) == SANDBOX_SESSION_SECRET
    True
    >>> check_secret(None, sandbox=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_GATEWAY_SESSION_SECRET is not set. ...
    >>> check_secret(SANDBOX_SESSION_SECRET, sandbox=False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    shared.errors.ConfigError: TRACE30_GATEWAY_SESSION_SECRET is the public sandbox secret...
    """
    return require_secret(
        "GATEWAY_SESSION_SECRET", secret, sandbox=sandbox, min_length=MIN_SECRET_LENGTH,
        purpose="the gateway signs the staff dashboard's session cookie with it",
        keep=", the same in every gateway process",
    )


class OpsSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, opened only under ``/ops``.

    The API never uses a session; without this every ``/v1`` request would build a signing
    serializer and read a cookie, which cost the cached-verdict path a tenth of its speed.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if not (request.path == PREFIX or request.path.startswith(PREFIX + "/")):
            return None  # Flask then uses a null session, and saves nothing
        return super().open_session(app, request)


def init_app(app: Flask) -> None:
    """Check the session secret, configure the session cookie and mount the dashboard."""
    c = app.config
    app.secret_key = check_secret(c["GATEWAY_SESSION_SECRET"], sandbox=c["SANDBOX"])
    app.session_interface = OpsSessions()
    c.update(
        SESSION_COOKIE_NAME="trace30_ops",
        SESSION_COOKIE_PATH=PREFIX,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=not c["SANDBOX"],
        PERMANENT_SESSION_LIFETIME=SESSION_LIFETIME,
    )
    app.register_blueprint(bp)
    app.after_request(_security_headers)
    # The project's problem handlers stay the only ones; for /ops and a browser their answer
    # is shown as an HTML page with the same status.
    app.register_error_handler(errors.Trace30Error, _html_for_browsers(errors.handle_trace30_error))
    app.register_error_handler(HTTPException, _html_for_browsers(errors.handle_http_exception))
    app.register_error_handler(
        InternalServerError, _html_for_browsers(errors.handle_http_exception)
    )


# -- plumbing -------------------------------------------------------------------------------------


def _on_ops() -> bool:
    return request.path == PREFIX or request.path.startswith(PREFIX + "/")


def _wants_html() -> bool:
    best = request.accept_mimetypes.best_match(
        [errors.PROBLEM_JSON, "application/json", "text/html"]
    )
    return best == "text/html"


def _security_headers(response: Response) -> Response:
    if _on_ops():
        for name, value in SECURITY_HEADERS.items():
            if name == "Content-Security-Policy" and name in response.headers:
                continue  # a stricter policy set by the view (a document file) stays
            response.headers[name] = value
    return response


def _html_for_browsers(handler: Callable[[Any], Response]) -> Callable[[Any], Response]:
    def handle(exc: Any) -> Response:
        response = handler(exc)
        if not (_on_ops() and _wants_html()):
            return response
        try:
            problem = json.loads(response.get_data())
            page = render_template("ops/error.html", problem=problem)
        except Exception:  # the problem answer is always there to fall back on
            log.exception("the HTML error page failed; answering problem+json")
            return response
        html = Response(page, status=response.status_code, mimetype="text/html")
        for name, value in response.headers.items():
            if name.lower() not in ("content-type", "content-length"):
                html.headers[name] = value
        return html

    return handle


def _verifier() -> Verifier:
    verifier: Verifier = current_app.extensions[api.EXTENSION]
    return verifier


def _evidence() -> EvidenceLog:
    return _verifier().evidence


def staff_actor(member: StaffMember) -> Actor:
    """The actor a staff member is (role from the account)."""
    return Actor(kind="staff", name=member.username, tenant=member.tenant, role=member.role,
                 staff_id=member.id, display_name=member.display_name)


def _signed_in_actor() -> Actor | None:
    """Who the session is, if it is live in the evidence log (not signed out, not expired):
    a staff member whose account is still there and active (role as it is now), or a client
    still configured with the ``ops`` scope."""
    session_id, signed_in_at = session.get("sid"), session.get("signed_in_at")
    if not isinstance(session_id, str) or not isinstance(signed_in_at, int):
        return None
    if time.time() - signed_in_at > SESSION_LIFETIME.total_seconds():
        return None
    client_id, staff_id = _evidence().session_owner(session_id)
    if staff_id is not None:
        member = _evidence().staff_member(staff_id)
        return staff_actor(member) if member is not None and member.active else None
    client = access.client_by_id(client_id) if client_id else None
    if client is None or SCOPE not in client.scopes:
        return None
    return actors.of_client(client)


def _signin_limits() -> SigninLimits:
    c = current_app.config
    return SigninLimits(store=current_app.extensions["trace30.redis"],
                        max_per_account=c["GATEWAY_SIGNIN_MAX_FAILURES"],
                        max_per_ip=c["GATEWAY_SIGNIN_MAX_FAILURES_PER_IP"],
                        window_s=c["GATEWAY_SIGNIN_WINDOW_S"])


def csrf_token() -> str:
    """The session's CSRF token (made on first use)."""
    token = session.get("csrf")
    if not isinstance(token, str) or not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf() -> None:
    expected = session.get("csrf")
    sent = request.form.get("csrf_token", "")
    if not (isinstance(expected, str) and expected
            and hmac.compare_digest(sent.encode(), expected.encode())):
        raise BadRequest(
            "The form's security token is missing or out of date: reload the page and submit "
            "the form again.",
            errors={"csrf_token": ["Missing or not valid."]},
        )


@bp.before_request
def _guard() -> Any:
    """Sign-in on every page but the sign-in form; the CSRF token on every POST."""
    if request.endpoint not in _PUBLIC_ENDPOINTS:
        actor = _signed_in_actor()
        if actor is None:
            if "sid" in session:
                session.clear()
            return redirect(url_for("ops.login"))
        g.staff = actor  # .tenant: whose traders the pages show
        g.actor = actor
    if request.method == "POST":
        _check_csrf()
    return None


@bp.context_processor
def _template_context() -> dict[str, Any]:
    return {"csrf_token": csrf_token, "staff": g.get("staff"), "actor": g.get("actor"),
            "verdicts": Verdict.values()}


@bp.app_template_filter("when")
def _when(value: datetime | date | str | None) -> str:
    """A timestamp as ``2026-01-02 10:11:12 UTC``; an ISO date stays as it is.

    >>> _when("2026-11-28T20:03:12Z"), _when("2026-11-28"), _when(None)
    ('2026-11-28 20:03:12 UTC', '2026-11-28', '—')
    """
    if value is None or value == "":
        return "—"
    if isinstance(value, str):
        if "T" not in value:
            return value
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


@bp.app_template_filter("pretty_json")
def _pretty_json(value: Any) -> str:
    """``value`` as indented JSON text (autoescaped where it is shown)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, default=str)


@bp.app_template_filter("web_url")
def _web_url(value: Any) -> str | None:
    """``value`` if it is an http(s) URL fit for a link, else None."""
    if isinstance(value, str) and urlsplit(value).scheme in ("http", "https"):
        return value
    return None


def _load(schema: ma.Schema, data: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = schema.load(data)
        return loaded
    except ma.ValidationError as e:
        fields_at_fault = ", ".join(sorted(map(str, e.messages)))
        raise BadRequest(f"The {what} has invalid values: {fields_at_fault}",
                         errors=e.messages) from e  # type: ignore[arg-type]


def _given(values: Any) -> dict[str, str]:
    """The non-empty values of a query or form (an empty search field means no filter)."""
    return {k: v for k, v in values.items() if v.strip() != ""}


# -- sign-in ---------------------------------------------------------------------------------------


def _start_session(*, client_id: str | None = None, staff_id: str | None = None) -> None:
    session.clear()
    session.permanent = True
    session["sid"] = _evidence().open_session(client_id, SESSION_LIFETIME, staff_id=staff_id)
    session["signed_in_at"] = int(time.time())
    session["csrf"] = secrets.token_urlsafe(32)


def _too_many(wait_s: int) -> Any:
    log.warning("dashboard sign-in refused", extra={"reason": "too many failed attempts",
                                                    "retry_after_s": wait_s})
    minutes = max(1, math.ceil(wait_s / 60))
    message = (f"Too many failed sign-in attempts. Try again in {minutes} "
               f"minute{'s' if minutes > 1 else ''}.")
    return (render_template("ops/login.html", error=message), 429,
            {"Retry-After": str(wait_s)})


def _client_ip() -> str:
    """The client's address for the sign-in limits (see ``GATEWAY_SIGNIN_TRUST_FORWARDED_FOR``)."""
    if current_app.config["GATEWAY_SIGNIN_TRUST_FORWARDED_FOR"]:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.remote_addr or "unknown"


def _account(username: str) -> tuple[str | None, str]:
    """``(tenant, username)`` of what was typed: ``name@tenant`` names the tenant (for a
    username that exists at more than one marketplace); a plain name is looked up in all."""
    name, at, tenant = username.partition("@")
    return (tenant, name) if at and tenant else (None, username)


@bp.route("/login", methods=["GET", "POST"])
def login() -> Any:
    """The sign-in form: a staff member's username and password, or (automation) a valid key
    of a client with the ``ops`` scope. Failed attempts are limited per account and per IP."""
    if request.method == "GET":
        if _signed_in_actor() is not None:
            return redirect(url_for("ops.traders"))
        return render_template("ops/login.html")
    limits, ip = _signin_limits(), _client_ip()
    if "username" in request.form:
        typed = request.form.get("username", "").strip()
        password = request.form.get("password", "")
        wait = limits.blocked_for(typed.lower() or None, ip)
        if wait:
            return _too_many(wait)
        tenant, username = _account(typed)
        username = username.lower()  # usernames are lower-case; tenant ids keep their case
        member = (_evidence().authenticate(tenant=tenant, username=username, password=password)
                  if username and password else None)
        if member is None:
            limits.failed(typed.lower() or None, ip)
            log.warning("dashboard sign-in refused", extra={"reason": "wrong username or "
                                                            "password, or account disabled"})
            return render_template("ops/login.html", error="Wrong username or password.",
                                   username=typed), 401
        limits.succeeded(typed.lower())
        _start_session(staff_id=member.id)
        log.info("dashboard sign-in", extra={"staff": f"staff:{member.username}",
                                             "tenant": member.tenant})
        return redirect(url_for("ops.traders"), 303)
    wait = limits.blocked_for(None, ip)
    if wait:
        return _too_many(wait)
    key = request.form.get("api_key", "").strip()
    client = access.client_for_key(key) if key else None
    if client is None or SCOPE not in client.scopes:
        limits.failed(None, ip)
        reason = "unknown key" if client is None else "no ops scope"
        log.warning("dashboard sign-in refused", extra={"reason": reason})
        message = ("That API key is not valid." if client is None else
                   f"That API key has no '{SCOPE}' scope; the dashboard needs a key with it.")
        return render_template("ops/login.html", error=message), 401
    _start_session(client_id=client.id)
    log.info("dashboard sign-in", extra={"client_id": client.id})
    return redirect(url_for("ops.traders"), 303)


@bp.post("/logout")
def logout() -> Any:
    """Sign out: the session is revoked in the evidence log (a copy of the cookie stops
    working) and the cookie emptied."""
    session_id = session.get("sid")
    if isinstance(session_id, str):
        _evidence().revoke_session(session_id)
    session.clear()
    return redirect(url_for("ops.login"), 303)


# -- traders ---------------------------------------------------------------------------------------


class TradersQuery(ma.Schema):
    """The traders list's query: filter, exact trader id, where the page starts."""

    class Meta:
        unknown = ma.EXCLUDE

    verdict = fields.String(validate=validate.OneOf(Verdict.values()))
    trader_id = fields.String(validate=validate.Length(min=1, max=100))
    after = fields.String(validate=validate.Length(min=1, max=1000), metadata={
        "description": "The cursor of the next page (its link's), keyset: never OFFSET"})


@bp.get("/")
def traders() -> str:
    """Counts per current verdict, and the traders, most recently checked first, a page at a
    time (keyset: the "older" link carries the last trader's position, signed)."""
    query = _load(TradersQuery(), _given(request.args), "query")
    verdict, trader_id = query.get("verdict"), query.get("trader_id")
    evidence, tenant = _evidence(), g.staff.tenant
    filters = {"verdict": verdict, "trader_id": trader_id}
    after, page = None, 1
    if "after" in query:
        position = cursors.load("ops-traders", query["after"], tenant=tenant, filters=filters,
                                field="after")
        if (len(position) != 3 or not isinstance(position[1], str)
                or not isinstance(position[2], int) or position[2] < 2):
            raise BadRequest("The after is not valid.", errors={"after": ["Not a valid cursor."]})
        after = SummaryKey(cursors.timestamp(position[0], "after"), position[1])
        page = position[2]
    total = evidence.count_traders(tenant=tenant, verdict=verdict, trader_id=trader_id)
    rows = evidence.trader_summaries(tenant=tenant, verdict=verdict, trader_id=trader_id,
                                     after=after, limit=PAGE_SIZE)
    pages = max(1, math.ceil(total / PAGE_SIZE))
    following = None
    if len(rows) == PAGE_SIZE and page < pages:
        last = rows[-1].key()
        following = cursors.dump("ops-traders", tenant=tenant, filters=filters,
                                 position=[last.checked_at, last.trader_id, page + 1])
    return render_template(
        "ops/traders.html", rows=rows, counts=evidence.verdict_counts(tenant=tenant),
        total=total, page=page, pages=pages, following=following, verdict=verdict,
        trader_id=trader_id, page_size=PAGE_SIZE,
    )


@bp.get("/traders/<trader_id>")
def trader(trader_id: str) -> str:
    """A trader: current verdict and its evidence, history, relationship, actions."""
    evidence, tenant = _evidence(), g.staff.tenant
    summaries = evidence.trader_summaries(tenant=tenant, trader_id=trader_id, limit=1)
    history = evidence.history(trader_id, limit=HISTORY_LIMIT, tenant=tenant)
    if not summaries and not history:
        raise NotFound(f"No trader {trader_id} in the evidence log.")
    summary = summaries[0] if summaries else None
    current = summary.current if summary else None
    ended_at = summary.ended_at if summary else None
    purge_after = (retention.purge_after(ended_at, current_app.config["RETENTION_MONTHS"])
                   if ended_at else None)
    latest = current or history[0]
    return render_template(
        "ops/trader.html", trader_id=trader_id, name=latest.submission.get("name"),
        current=_verifier().view(current) if current else None, history=history,
        ended_at=ended_at, purge_after=purge_after, item_labels=ITEM_LABELS,
        today=datetime.now(UTC).date(),
        correction_due=evidence.correction_due(trader_id, tenant=tenant),
        actions=evidence.actions(trader_id, tenant=tenant),
        now=datetime.now(UTC),
        certification=certification_of(latest.submission),
    )


@bp.post("/traders/<trader_id>/reverify")
def reverify(trader_id: str) -> Any:
    """Verify the trader's last submission again now (like ``POST /v1/traders/{id}/reverify``);
    for a ``reviewer`` or ``admin``."""
    actor = actors.current()
    actor.require("reviewer")
    try:
        outcome = _verifier().reverify(trader_id, actor.label, tenant=actor.tenant,
                                       wait_s=current_app.config["GATEWAY_DEFAULT_WAIT_S"],
                                       request_id=current_request_id())
    except SealingError as e:
        raise Conflict("The trader's last submission cannot be unsealed with the configured "
                       "keys, so it cannot be verified again.") from e
    if outcome is None:
        raise NotFound(f"No settled verification of trader {trader_id} to verify again.")
    _evidence().record_action(tenant=actor.tenant, actor=actor.label, staff_id=actor.staff_id,
                              action="reverify", trader_id=trader_id,
                              verification_id=outcome.result["id"],
                              detail={"from": "dashboard"})
    if outcome.status == 202:
        flash("The verification is still running; this page shows its verdict when it is ready.")
    return redirect(url_for("ops.verification", verification_id=outcome.result["id"]), 303)


class EndForm(ma.Schema):
    """The "record end of relationship" form: a confirmation, and optionally the day it ended."""

    class Meta:
        unknown = ma.EXCLUDE

    confirm = fields.String(
        required=True, validate=validate.Equal("yes", error="Tick the box to confirm."),
        error_messages={"required": "Tick the box to confirm."},
    )
    ended_on = fields.Date()

    @ma.validates("ended_on")
    def _not_in_future(self, value: date, **_: Any) -> None:
        if value > datetime.now(UTC).date():
            raise ma.ValidationError("Must not be in the future.")


@bp.post("/traders/<trader_id>/end")
def end_relationship(trader_id: str) -> Any:
    """Record the end of the relationship (like ``POST /v1/traders/{id}/end``); for a
    ``reviewer`` or ``admin``."""
    actor = actors.current()
    actor.require("reviewer")
    form = _load(EndForm(), _given(request.form), "form")
    ended_on: date | None = form.get("ended_on")
    ended_at = (datetime(ended_on.year, ended_on.month, ended_on.day, tzinfo=UTC)
                if ended_on else datetime.now(UTC))
    first = _evidence().first_verification_at(trader_id, tenant=g.staff.tenant)
    if first is not None and ended_on == first.date():
        ended_at = max(ended_at, first)  # the day it started: from its first verification on
    try:
        known = _evidence().end_relationship(trader_id, ended_at, actor=actor.label,
                                             tenant=actor.tenant, staff_id=actor.staff_id)
    except EndBeforeFirstVerification as e:
        raise e.bad_request("ended_on", e.first.date().isoformat()) from e
    if not known:
        raise NotFound(f"No verification for trader {trader_id}.")
    purge_after = retention.purge_after(ended_at, current_app.config["RETENTION_MONTHS"])
    log.info("relationship end recorded from the dashboard", extra={"actor": actor.label})
    flash(f"End of relationship recorded ({_when(ended_at)}); the evidence is deleted after "
          f"{_when(purge_after)}.")
    return redirect(url_for("ops.trader", trader_id=trader_id), 303)


# -- verifications ---------------------------------------------------------------------------------

#: What the trader declared that staff see next to the checks (e-mail, phone number, IBAN and
#: document reference are left out).
_DECLARED = ("name", "address", "vat_number", "registration")


@bp.get("/verifications/<verification_id>")
def verification(verification_id: str) -> str:
    """Everything the evidence log holds about one verification, as the API shows it."""
    evidence = _evidence()
    record = evidence.get(verification_id)
    if record is None or record.tenant_id != g.staff.tenant:
        raise NotFound(f"No verification {verification_id}.")
    sub = record.submission
    declared = {k: sub[k] for k in _DECLARED if sub.get(k)}
    if (sub.get("identification") or {}).get("type"):
        declared["identification"] = sub["identification"]["type"]
    if (sub.get("payment") or {}).get("account_holder"):
        declared["account_holder"] = sub["payment"]["account_holder"]
    if sub.get("self_certification"):
        declared["self_certification"] = sub["self_certification"].get("accepted")
    return render_template(
        "ops/verification.html", v=_verifier().view(record), record=record,
        declared=declared, seal=evidence.seal_intact(verification_id),
        deliveries=evidence.deliveries(verification_id), item_labels=ITEM_LABELS,
        certification=certification_of(sub),
    )


# -- casework: review queue, decisions, corrections, statements, complaints ----------------------
# (the rules: services/gateway/casework.py; the trader page's sections: ops/_casework.html)

#: Rows of the review queue and of the complaints list.
QUEUE_LIMIT = 200


def _waited(since: datetime | None, now: datetime) -> str:
    """How long something has waited, as ``3 d 4 h`` / ``2 h 5 min`` / ``7 min``.

    >>> t = datetime(2026, 1, 1, tzinfo=UTC)
    >>> _waited(t, t + timedelta(days=3, hours=4)), _waited(t, t + timedelta(minutes=7))
    ('3 d 4 h', '7 min')
    """
    if since is None:
        return "—"
    minutes = max(0, int((now - since).total_seconds() // 60))
    days, hours, mins = minutes // 1440, minutes % 1440 // 60, minutes % 60
    if days:
        return f"{days} d {hours} h"
    return f"{hours} h {mins} min" if hours else f"{mins} min"


@bp.app_template_global("casework_of")
def casework_of(trader_id: str) -> dict[str, Any]:
    """What the trader page's casework sections show (``ops/_casework.html``): the state, the
    open correction, the documents to rely on, and the timeline, newest first."""
    actor = actors.current()
    evidence, tenant = _evidence(), actor.tenant
    state = _verifier().casework.trader_view(trader_id, tenant=tenant) or {
        "state": "active", "correction": None}
    reviews = evidence.reviews(trader_id, tenant=tenant)
    statements = evidence.statements(trader_id, tenant=tenant)
    complaints = evidence.complaints(tenant=tenant, trader_id=trader_id)
    documents = evidence.documents_of(trader_id, tenant=tenant)
    timeline: list[dict[str, Any]] = []
    for v in evidence.history(trader_id, limit=HISTORY_LIMIT, tenant=tenant):
        kept = (v.evidence or {}).get("approval_kept")
        timeline.append({"at": v.settled_at or v.created_at, "kind": "verification",
                         "what": f"{v.source} verification: {v.verdict or v.state}"
                                 + (" (same facts: the approval in force is kept)"
                                    if kept else ""),
                         "link": url_for("ops.verification", verification_id=v.id)})
    for d in documents:
        timeline.append({"at": d["uploaded_at"], "kind": "document",
                         "what": f"document uploaded: {d['kind']} by {d['uploaded_by']}",
                         "link": None})
    for r in reviews:
        timeline.append({"at": r["decided_at"], "kind": "decision",
                         "what": f"decision {r['decision']} of {', '.join(r['items'] or [])} "
                                 f"by {r['reviewer']}: {r['note']}",
                         "link": url_for("ops.verification",
                                         verification_id=r["verification_id"])
                         if r["verification_id"] else None})
    for s in statements:
        timeline.append({"at": s["created_at"], "kind": "statement",
                         "what": f"statement of reasons: {s['kind'].replace('_', ' ')}"
                                 f" ({'automated' if s['automated'] else s['decided_by']})",
                         "link": url_for("ops.statement", statement_id=s["id"])})
    for c in complaints:
        timeline.append({"at": c["received_at"], "kind": "complaint",
                         "what": "complaint received",
                         "link": url_for("ops.complaint", complaint_id=c["id"])})
        if c["decided_at"]:
            timeline.append({"at": c["decided_at"], "kind": "complaint",
                             "what": f"complaint {c['status']} by {c['decided_by']}",
                             "link": url_for("ops.complaint", complaint_id=c["id"])})
    for a in evidence.actions(trader_id, tenant=tenant):
        timeline.append({"at": a["at"], "kind": "staff action",
                         "what": f"{a['action'].replace('_', ' ')} by {a['actor']}",
                         "link": None})
    if state.get("state_changed_at"):
        timeline.append({"at": datetime.fromisoformat(state["state_changed_at"]),
                         "kind": "state", "what": f"state: {state['state']}", "link": None})
    timeline.sort(key=lambda e: e["at"] or datetime.min.replace(tzinfo=UTC), reverse=True)
    due_at = (state.get("correction") or {}).get("due_at")
    due_passed = isinstance(due_at, str) and datetime.fromisoformat(due_at) <= datetime.now(UTC)
    return {"state": state, "documents": documents, "timeline": timeline,
            "due_passed": due_passed,
            "may_act": actor.may("reviewer"), "items": ITEMS,
            "default_due": (datetime.now(UTC) + timedelta(
                days=_verifier().settings.correction_days)).date()}


class QueueQuery(ma.Schema):
    """The review queue's query: where the page starts."""

    class Meta:
        unknown = ma.EXCLUDE

    after = fields.String(validate=validate.Length(min=1, max=1000))


@bp.get("/queue")
def queue() -> str:
    """The review queue: ``needs_review`` traders, the longest waiting first, ``QUEUE_LIMIT``
    a page (keyset: the "more" link carries the last one's position, signed)."""
    query = _load(QueueQuery(), _given(request.args), "query")
    tenant = actors.current().tenant
    after = None
    if "after" in query:
        position = cursors.load("ops-queue", query["after"], tenant=tenant, filters={},
                                field="after")
        at = cursors.timestamp(position[0] if position else None, "after")
        if len(position) != 2 or at is None or not isinstance(position[1], str):
            raise BadRequest("The after is not valid.", errors={"after": ["Not a valid cursor."]})
        after = (at, position[1])
    now = datetime.now(UTC)
    records = _evidence().review_queue(tenant=tenant, limit=QUEUE_LIMIT, after=after)
    rows = [{"record": r, "waited": _waited(r.settled_at, now)} for r in records]
    following = (cursors.dump("ops-queue", tenant=tenant, filters={},
                              position=[records[-1].created_at, records[-1].trader_id])
                 if len(records) == QUEUE_LIMIT else None)
    return render_template("ops/queue.html", rows=rows, following=following,
                           first=after is None)


@bp.post("/traders/<trader_id>/reviews")
def review(trader_id: str) -> Any:
    """A reviewer's decision (like ``POST /v1/traders/{id}/reviews``), by the signed-in
    person."""
    actor = actors.current()
    decision = request.form.get("decision", "")
    result = _verifier().casework.decide(
        trader_id, actor, reviewer=actor.label, decision=decision,
        items=request.form.getlist("items"), note=request.form.get("note", ""),
        document_ids=[d for d in request.form.getlist("document_ids") if d])
    flash(f"Decision recorded: {decision.replace('_', ' ')}; the verdict is now "
          f"{result['verification']['verdict'].replace('_', ' ')}.")
    return redirect(url_for("ops.trader", trader_id=trader_id), 303)


class CorrectionForm(ma.Schema):
    """The "request correction" form."""

    class Meta:
        unknown = ma.EXCLUDE

    reasons = fields.String(required=True, validate=validate.Length(min=1, max=5000),
                            error_messages={"required": "Say what to correct."})
    due_on = fields.Date()

    @ma.validates("due_on")
    def _in_future(self, value: date, **_: Any) -> None:
        if value <= datetime.now(UTC).date():
            raise ma.ValidationError("Must be after today.")


@bp.post("/traders/<trader_id>/corrections")
def correction(trader_id: str) -> Any:
    """Ask the trader to correct its data (like ``POST /v1/traders/{id}/corrections``)."""
    form = _load(CorrectionForm(), _given(request.form), "form")
    due_on: date | None = form.get("due_on")
    due_at = datetime(due_on.year, due_on.month, due_on.day, 23, 59, 59,
                      tzinfo=UTC) if due_on else None
    result = _verifier().casework.request_correction(
        trader_id, actors.current(), items=request.form.getlist("items"),
        reasons=form["reasons"], due_at=due_at)
    flash(f"Correction requested; due {_when(result['correction']['due_at'])}.")
    return redirect(url_for("ops.trader", trader_id=trader_id), 303)


@bp.post("/traders/<trader_id>/reinstatement")
def reinstatement(trader_id: str) -> Any:
    """Lift the trader's suspension (like ``POST /v1/traders/{id}/reinstatement``)."""
    _verifier().casework.reinstate(trader_id, actors.current())
    flash("Suspension lifted: the trader is reinstated.")
    return redirect(url_for("ops.trader", trader_id=trader_id), 303)


@bp.get("/statements/<statement_id>")
def statement(statement_id: str) -> Response:
    """A statement of reasons, as the trader reads it (printable)."""
    row = _evidence().statement(statement_id, tenant=actors.current().tenant)
    if row is None:
        raise NotFound(f"No statement {statement_id}.")
    return api.statement_page(_verifier().casework.statement_view(row))


@bp.get("/complaints")
def complaints() -> str:
    """Open complaints, the oldest first."""
    now = datetime.now(UTC)
    rows = [{**c, "waited": _waited(c["received_at"], now)}
            for c in _evidence().complaints(tenant=actors.current().tenant, status="open",
                                            limit=QUEUE_LIMIT)]
    return render_template("ops/complaints.html", rows=rows)


@bp.get("/complaints/<complaint_id>")
def complaint(complaint_id: str) -> str:
    """A complaint, the statement it contests, and the decision form."""
    actor = actors.current()
    row = _evidence().complaint(complaint_id, tenant=actor.tenant)
    if row is None:
        raise NotFound(f"No complaint {complaint_id}.")
    contested = _evidence().statement(row["statement_id"], tenant=actor.tenant)
    same = (row["contested_by"] is not None
            and casework.person(row["contested_by"]) == casework.person(actor.label))
    return render_template("ops/complaint.html", c=row, statement=contested,
                           may_decide=actor.may("reviewer") and not same, same_person=same)


@bp.post("/complaints/<complaint_id>/decision")
def complaint_decision(complaint_id: str) -> Any:
    """Decide a complaint (like ``POST /v1/complaints/{id}/decision``), as the signed-in
    person."""
    actor = actors.current()
    result = _verifier().casework.decide_complaint(
        complaint_id, actor, decided_by=actor.label,
        outcome=request.form.get("outcome", ""), note=request.form.get("note", ""))
    flash(f"Complaint {result['status']}.")
    return redirect(url_for("ops.complaint", complaint_id=complaint_id), 303)
