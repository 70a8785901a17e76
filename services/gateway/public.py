"""The public trader card (DSA Art 30(7)): ``GET /public/v1/{tenant}/traders/{trader_id}``.

What a marketplace must show buyers about a trader, served without credentials so that product
pages (and the marketplace's CDN) can embed it: the name, address, telephone and e-mail
(30(1)(a)), the register and registration number (30(1)(d); the VAT number too if the
marketplace wants), and the self-certification statement with its date (30(1)(e)). Which of
these the card shows is ``TRACE30_PUBLIC_CARD_FIELDS``. The card is built from an allow-list of
the sealed submission's fields, so the payment account (30(1)(c)), the identity document
(30(1)(b)), the verdict, its reasons and anything a reviewer wrote never reach it.

- **Tenants.** The tenant is part of the URL: a card is looked up by ``(tenant, trader id)``,
  exactly like every other trader lookup, so a trader id of one marketplace never finds another
  marketplace's trader. Only the tenants in ``TRACE30_PUBLIC_CARD_TENANTS`` have cards; any
  other tenant answers 404, like an unknown trader.
- **When.** Only while the trader may trade: its current verification is ``verified`` (by the
  checks, or a reviewer's approval, which is a ``manual`` verification), it is not suspended
  and the relationship has not ended. Otherwise 404, saying no more.
- **``?at=DATE``** (Art 32: informing buyers of an illegal product they bought earlier): the
  card in force then, from the latest verification settled by that time (a date alone means the
  end of that day, UTC). Suspensions and reinstatements are read from their history
  (statements of reasons, staff actions); the end of the relationship is the trader's latest.
- **Caching.** ``ETag`` is the SHA-256 of the body (a strong validator), ``If-None-Match``
  answers 304, ``Cache-Control: public, max-age=TRACE30_PUBLIC_CARD_MAX_AGE_S``; ``Vary:
  Accept``.
- **HTML.** ``Accept: text/html`` gives an embeddable fragment: escaped text, no script, no
  inline style or event handler, under a ``Content-Security-Policy`` that allows nothing.
- **Rate limit.** ``TRACE30_PUBLIC_CARD_RATE_PER_MINUTE`` per client IP (Redis, shared by all
  processes; the key is a digest of the IP); past it 429 problem+json with ``Retry-After``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, Response, current_app, render_template, request
from marshmallow import ValidationError, fields

from services.gateway import api
from services.gateway.access import valid_tenant
from services.gateway.evidence import (
    staff_actions_table,
    traders_table,
    verifications_table,
)
from services.gateway.evidence.schema import statements_table
from services.gateway.schemas import check_date
from services.gateway.sealing import SealingError
from services.gateway.verifications import certification_of
from shared.errors import NotFound, ServiceUnavailable, TooManyRequests
from shared.limits import RateLimiter
from shared.openapi import Blueprint

log = logging.getLogger(__name__)

bp = Blueprint("public", __name__, url_prefix="/public/v1", template_folder="templates",
               description="The public trader card of DSA Art 30(7), without credentials")

LIMITER = "trace30.gateway.public.limiter"
#: A fragment needs nothing: no script, style, image, frame, form or base of its own.
CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors *; sandbox"
#: How far ahead of the server's clock ``at`` may be.
CLOCK_SKEW = timedelta(minutes=1)


class AtField(fields.Field[datetime]):
    """A date (``2025-03-01``: the end of that day, UTC) or a date-time with its offset."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kw: Any) -> datetime:
        message = "Must be a date (YYYY-MM-DD) or a date-time with a UTC offset."
        if not isinstance(value, str) or len(value) > 40:
            raise ValidationError(message)
        try:
            if len(value) == 10:
                at = datetime.combine(date.fromisoformat(value), time.max, UTC)
            else:
                at = datetime.fromisoformat(value)
        except ValueError:
            raise ValidationError(message) from None
        if at.tzinfo is None or at.utcoffset() is None:
            raise ValidationError(message)
        check_date(at)
        now = datetime.now(UTC)
        if (at.date() > now.date()) if len(value) == 10 else (at > now + CLOCK_SKEW):
            raise ValidationError("Must not be in the future.")
        return at.astimezone(UTC)


class CardQuerySchema(ma.Schema):
    """The card's query: ``at``, to see the card in force at a past time."""

    at = AtField(metadata={"description": "The card in force at this time: a date "
                           "(YYYY-MM-DD, the end of that day UTC) or a date-time with offset; "
                           "not in the future",
                           "type": "string", "example": "2025-03-01"})


class CardAddressSchema(ma.Schema):
    street = fields.String(allow_none=True)
    postcode = fields.String(allow_none=True)
    city = fields.String(allow_none=True)
    country_code = fields.String(allow_none=True)


class CardRegisterSchema(ma.Schema):
    name = fields.String(allow_none=True, metadata={"description": "The trade register"})
    country_code = fields.String(allow_none=True)
    in_register = fields.Boolean(metadata={"description": "False: a trader in no trade "
                                           "register (a sole trader)"})


class CardCertificationSchema(ma.Schema):
    statement = fields.String()
    accepted_at = fields.String(allow_none=True)
    text_version = fields.String(allow_none=True)


class PublicCardSchema(ma.Schema):
    """The trader card of Art 30(7); fields not configured are left out."""

    tenant = fields.String()
    trader_id = fields.String()
    as_of = fields.String(allow_none=True, metadata={"description": "The ``at`` asked for"})
    name = fields.String(allow_none=True)
    address = fields.Nested(CardAddressSchema, allow_none=True)
    telephone = fields.String(allow_none=True)
    email = fields.String(allow_none=True)
    register = fields.Nested(CardRegisterSchema, allow_none=True)
    registration_number = fields.String(allow_none=True)
    vat_number = fields.String(allow_none=True)
    self_certification = fields.Nested(CardCertificationSchema, allow_none=True)


def card_fields(sub: dict[str, Any], shown: tuple[str, ...],
                certification_text: str) -> dict[str, Any]:
    """The card's fields, taken one by one from the full submission ``sub`` (an allow-list:
    nothing else of it can reach the card).

    >>> card_fields({"name": "A", "payment": {"iban": "DE89"}, "phone": "+49 30 1"},
    ...             ("name", "telephone"), "")
    {'name': 'A', 'telephone': '+49 30 1'}
    """
    address = sub.get("address") or {}
    reg = sub.get("registration") or {}
    cert = certification_of(sub)
    values: dict[str, Any] = {
        "name": sub.get("name"),
        "address": {k: address.get(k) for k in ("street", "postcode", "city", "country_code")}
        if address else None,
        "telephone": sub.get("phone"),
        "email": sub.get("email"),
        "register": {"name": reg.get("register") or reg.get("kind"),
                     "country_code": reg.get("country_code"),
                     "in_register": reg.get("not_registered") is not True} if reg else None,
        "registration_number": reg.get("number"),
        "vat_number": sub.get("vat_number"),
        "self_certification": {"statement": certification_text,
                               "accepted_at": cert.get("accepted_at"),
                               "text_version": cert.get("text_version")}
        if cert and cert.get("accepted") is True else None,
    }
    return {name: values[name] for name in shown}


def verification_in_force(engine: sa.Engine, tenant: str, trader_id: str,
                          at: datetime | None) -> str | None:
    """The id of the verified verification that makes the trader's card at ``at`` (now when
    None), or None when the trader could not trade then."""
    tt, t = traders_table, verifications_table
    with engine.connect() as conn:
        trader = conn.execute(
            sa.select(tt.c.current_verification_id, tt.c.current_verdict, tt.c.state,
                      tt.c.ended_at, tt.c.suspended_at, tt.c.reinstated_at)
            .where(tt.c.tenant_id == tenant, tt.c.trader_id == trader_id)
        ).first()
        if trader is None:
            return None
        if at is None:
            if (trader.ended_at is not None or trader.state == "suspended"
                    or trader.current_verdict != "verified"):
                return None
            return str(trader.current_verification_id)
        if trader.ended_at is not None and trader.ended_at <= at:
            return None
        if _suspended_at(conn, tenant, trader_id, trader, at):
            return None
        # the one the trader's row pointed at then: the newest (by creation) settled by `at`
        row = conn.execute(
            sa.select(t.c.id, t.c.verdict)
            .where(t.c.tenant_id == tenant, t.c.trader_id == trader_id,
                   t.c.state == "settled", t.c.settled_at <= at)
            .order_by(t.c.created_at.desc(), t.c.id.desc()).limit(1)
        ).first()
    return str(row.id) if row is not None and row.verdict == "verified" else None


def _suspended_at(conn: sa.Connection, tenant: str, trader_id: str, trader: Any,
                  at: datetime) -> bool:
    """Whether the trader was suspended at ``at``: the latest suspension or reinstatement by
    then decides (statements of reasons of kind ``suspension``, the staff actions ``suspend``
    and ``reinstate``, and the trader row's latest ``suspended_at`` / ``reinstated_at``; at the
    same instant a suspension wins)."""
    st, sa_ = statements_table, staff_actions_table
    events: list[tuple[datetime, bool]] = [
        (when, suspend) for when, suspend in ((trader.suspended_at, True),
                                              (trader.reinstated_at, False))
        if when is not None and when <= at]
    last_statement = conn.execute(
        sa.select(sa.func.max(st.c.created_at))
        .where(st.c.tenant_id == tenant, st.c.trader_id == trader_id,
               st.c.kind == "suspension", st.c.created_at <= at)).scalar()
    if last_statement is not None:
        events.append((last_statement, True))
    for action, when in conn.execute(
            sa.select(sa_.c.action, sa.func.max(sa_.c.at))
            .where(sa_.c.tenant_id == tenant, sa_.c.trader_id == trader_id,
                   sa_.c.action.in_(("suspend", "reinstate")), sa_.c.at <= at)
            .group_by(sa_.c.action)):
        events.append((when, action == "suspend"))
    return bool(events) and max(events)[1]


def _submission(evidence: Any, vid: str) -> dict[str, Any] | None:
    """The full submission behind verification ``vid``: its own sealed one, or for a reviewer's
    (``manual``) verification kept without one, that of the verification it settles."""
    sub = evidence.private_submission(vid)
    if sub is None:
        t = verifications_table
        with evidence.engine.connect() as conn:
            settles = conn.execute(sa.select(t.c.settles_verification_id)
                                   .where(t.c.id == vid)).scalar()
        if settles:
            sub = evidence.private_submission(settles)
    return sub  # type: ignore[no-any-return]


def _client_ip() -> str:
    if current_app.config["PUBLIC_CARD_TRUST_FORWARDED_FOR"]:
        forwarded = request.headers.get("X-Forwarded-For", "").split(",")[-1].strip()
        if forwarded:
            return forwarded[:64]
    return request.remote_addr or "unknown"


@bp.before_request
def _rate_limit() -> None:
    cfg = current_app.config
    ip_digest = hashlib.sha256(_client_ip().encode()).hexdigest()[:32]
    wait = current_app.extensions[LIMITER].try_acquire(
        ip_digest, cfg["PUBLIC_CARD_RATE_PER_MINUTE"], 60.0, burst=cfg["PUBLIC_CARD_BURST"])
    if wait > 0:
        raise TooManyRequests("Too many requests for public trader cards from this address.",
                              headers={"Retry-After": str(max(1, math.ceil(wait)))})


def _cacheable(body: bytes, mimetype: str, headers: dict[str, str]) -> Response:
    cfg = current_app.config
    etag = hashlib.sha256(body).hexdigest()
    common = {"Cache-Control": f"public, max-age={cfg['PUBLIC_CARD_MAX_AGE_S']}",
              "Vary": "Accept", "X-Content-Type-Options": "nosniff", **headers}
    if request.if_none_match.contains_weak(etag) or request.if_none_match.star_tag:
        response = Response(status=304, headers=common)
    else:
        response = Response(body, 200, common, mimetype=mimetype)
    response.set_etag(etag)
    return response


@bp.get("/<tenant>/traders/<trader_id>")
@bp.arguments(CardQuerySchema(), location="query")
@bp.response(200, PublicCardSchema(), description="The card (JSON), or with Accept: text/html "
             "an embeddable HTML fragment", content_type="application/json")
@bp.alt_response(304, description="Not modified (If-None-Match matched the ETag)")
@bp.alt_response(404, description="No card: unknown trader or tenant, or the trader may not "
                 "trade (not verified, suspended, relationship ended) at that time")
@bp.alt_response(429, description="Too many requests from this IP; see Retry-After")
@bp.doc(security=[], responses={"200": {
    "description": "The card (JSON), or with Accept: text/html an embeddable HTML fragment",
    "content": {
    "application/json": {"schema": PublicCardSchema},
    "text/html": {"schema": {"type": "string",
                             "description": "An HTML fragment: escaped text, no script"}}}}})
def trader_card(query: dict[str, Any], tenant: str, trader_id: str) -> Response:
    """The public trader card (Art 30(7)), no credentials needed."""
    cfg = current_app.config
    tenants = cfg["PUBLIC_CARD_TENANTS"]
    if not valid_tenant(tenant) or (tenants is not None and tenant not in tenants):
        raise NotFound("No public trader card here.")
    at = query.get("at")
    evidence = current_app.extensions[api.EXTENSION].evidence
    vid = verification_in_force(evidence.engine, tenant, trader_id, at)
    try:
        sub = _submission(evidence, vid) if vid else None
    except SealingError as e:
        log.error("public card: sealed submission does not open", extra={"verification": vid})
        raise ServiceUnavailable("The trader card cannot be shown now.") from e
    if sub is None:
        raise NotFound(f"No public card for trader {trader_id}"
                       + (f" at {at.isoformat()}." if at else "."))
    card = {"tenant": tenant, "trader_id": trader_id,
            "as_of": at.isoformat() if at else None,
            **card_fields(sub, cfg["PUBLIC_CARD_FIELDS"], cfg["PUBLIC_CARD_CERTIFICATION_TEXT"])}
    best = request.accept_mimetypes.best_match(["application/json", "text/html"],
                                               default="application/json")
    if best == "text/html":
        html = render_template("public/card.html", card=card)
        return _cacheable(html.encode(), "text/html", {"Content-Security-Policy": CSP})
    body = json.dumps(card, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return _cacheable(body.encode(), "application/json", {})


def init_app(app: Flask, openapi: Any) -> None:
    """Register the public card: its blueprint, and its per-IP limiter on the app's Redis."""
    app.extensions[LIMITER] = RateLimiter(app.extensions["trace30.redis"], "public-card")
    openapi.register_blueprint(bp)
