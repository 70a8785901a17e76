"""Routes of Art 30(6) disclosures and legal holds (``/v1``, scope ``ops``, role ``admin``),
and the disclosure signing key's public half at ``/.well-known/trace30-disclosure-key``.

- ``POST /v1/disclosures`` ``{trader_ids, authority, reference, legal_basis, include_files?,
  hold?}`` → 201 ``application/zip``: the signed bundle (:mod:`services.gateway.disclosures`),
  ``Location: /v1/disclosures/{id}`` (its log entry) and ``X-Trace30-Disclosure-Id``. The
  bundle is not kept: it goes to whoever asked, once; the log keeps each file's hash.
- ``GET /v1/disclosures`` and ``GET /v1/disclosures/{id}``: the tenant's disclosures log.
- ``POST /v1/traders/{id}/hold`` ``{reason}`` places a legal hold (201; the one in force, 200,
  if there is one), ``GET`` shows it, ``DELETE`` releases it.

Every route is the caller's tenant's: a trader of another tenant is unknown (404), and
nothing is disclosed or logged.
"""

from __future__ import annotations

from typing import Any

import marshmallow as ma
from flask import Flask, Response, current_app, g, jsonify, url_for
from flask_smorest import Api

from services.gateway import actors, disclosures, documents
from services.gateway.access import require
from services.gateway.api import EXTENSION
from services.gateway.evidence import EvidenceLog
from shared.errors import BadRequest, ConfigError, NotFound, ServiceUnavailable
from shared.inputs import Text
from shared.openapi import Blueprint

bp = Blueprint("disclosures", __name__, url_prefix="/v1",
               description="Disclosures to authorities (DSA Art 30(6)) and legal holds")


class DisclosureRequestSchema(ma.Schema):
    trader_ids = ma.fields.List(Text(max_length=255, single_line=True, blank=False),
                                required=True, validate=ma.validate.Length(min=1))
    authority = Text(max_length=255, single_line=True, blank=False, required=True)
    reference = Text(max_length=255, single_line=True, blank=False, required=True)
    legal_basis = Text(max_length=2000, blank=False, required=True)
    include_files = ma.fields.Boolean(load_default=False)
    hold = ma.fields.Boolean(load_default=False)


class HoldRequestSchema(ma.Schema):
    reason = Text(max_length=2000, blank=False, required=True)


def _evidence() -> EvidenceLog:
    evidence: EvidenceLog = current_app.extensions[EXTENSION].evidence
    return evidence


def _signing_key() -> Any:
    c = current_app.config
    try:
        return disclosures.signing_key(c["DISCLOSURE_SIGNING_KEY"], sandbox=c["SANDBOX"])
    except ConfigError as e:
        raise ServiceUnavailable(f"Disclosures are not configured: {e}") from e


def _known(trader_id: str) -> None:
    if not _evidence().trader_known(trader_id, tenant=g.client.tenant):
        raise NotFound(f"No trader {trader_id}.")


@bp.post("/disclosures")
@bp.arguments(DisclosureRequestSchema())
@require("ops")
def create_disclosure(body: dict[str, Any]) -> Response:
    """Make, sign, log and answer one disclosure bundle (a zip); see the module docstring."""
    actor = actors.current()
    actor.require("admin")
    trader_ids: list[str] = body["trader_ids"]
    most = current_app.config["DISCLOSURE_MAX_TRADERS"]
    if len(trader_ids) > most:
        raise BadRequest(f"At most {most} traders per disclosure.",
                         errors={"trader_ids": [f"Longer than maximum length {most}."]})
    if len(set(trader_ids)) != len(trader_ids):
        raise BadRequest("A trader is listed twice.",
                         errors={"trader_ids": ["Must not list a trader twice."]})
    unknown = [t for t in trader_ids
               if not _evidence().trader_known(t, tenant=g.client.tenant)]
    if unknown:
        raise NotFound(f"{len(unknown)} of the traders listed are unknown.",
                       errors={"trader_ids": [f"Unknown trader: {t}" for t in unknown]})
    key = _signing_key()
    bundle = disclosures.disclose(
        _evidence(), tenant=g.client.tenant, trader_ids=trader_ids,
        authority=body["authority"], reference=body["reference"],
        legal_basis=body["legal_basis"], actor=actor.label, staff_id=actor.staff_id, key=key,
        documents=current_app.extensions[documents.EXTENSION],
        include_files=body["include_files"], hold=body["hold"])
    return Response(bundle.zip_bytes, 201, mimetype="application/zip", headers={
        "Content-Disposition": f'attachment; filename="{bundle.filename}"',
        "Location": url_for("disclosures.get_disclosure", disclosure_id=bundle.id),
        "X-Trace30-Disclosure-Id": bundle.id, "Cache-Control": "no-store"})


@bp.get("/disclosures")
@require("ops")
def list_disclosures() -> Any:
    """The tenant's disclosures log, newest first."""
    actors.current().require("admin")
    return {"disclosures": _evidence().disclosures(tenant=g.client.tenant)}


@bp.get("/disclosures/<disclosure_id>")
@require("ops")
def get_disclosure(disclosure_id: str) -> Any:
    """One entry of the disclosures log: who, to whom, when, under what basis, what."""
    actors.current().require("admin")
    entry = _evidence().disclosure(disclosure_id, tenant=g.client.tenant)
    if entry is None:
        raise NotFound(f"No disclosure {disclosure_id}.")
    return entry


@bp.post("/traders/<trader_id>/hold")
@bp.arguments(HoldRequestSchema())
@require("ops")
def place_hold(body: dict[str, Any], trader_id: str) -> Any:
    """Place a legal hold: the retention purge skips the trader until it is released."""
    actor = actors.current()
    actor.require("admin")
    _known(trader_id)
    before = _evidence().hold(trader_id, tenant=g.client.tenant)
    hold = _evidence().place_hold(trader_id, tenant=g.client.tenant, reason=body["reason"],
                                  by=actor.label)
    return jsonify(hold), 200 if before else 201


@bp.get("/traders/<trader_id>/hold")
@require("ops")
def get_hold(trader_id: str) -> Any:
    """The legal hold in force on the trader (404 if none)."""
    actors.current().require("admin")
    hold = _evidence().hold(trader_id, tenant=g.client.tenant)
    if hold is None:
        raise NotFound(f"No legal hold in force on trader {trader_id}.")
    return hold


@bp.delete("/traders/<trader_id>/hold")
@require("ops")
def release_hold(trader_id: str) -> Any:
    """Release the legal hold: the next purge may delete the trader if its time has come."""
    actor = actors.current()
    actor.require("admin")
    if not _evidence().release_hold(trader_id, tenant=g.client.tenant, by=actor.label):
        raise NotFound(f"No legal hold in force on trader {trader_id}.")
    return {"trader_id": trader_id, "released": True}


def public_key() -> Any:
    """The disclosure signing key's public half, as a JWK set (no authentication)."""
    key = _signing_key()
    response = jsonify(disclosures.public_jwks(key.public_key()))
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


def init_app(app: Flask, openapi: Api) -> None:
    """Register the routes and the well-known public key."""
    openapi.register_blueprint(bp)
    app.add_url_rule(disclosures.WELL_KNOWN_PATH, "disclosure_key", public_key)
