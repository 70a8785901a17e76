"""The document routes of the ``/v1`` API (see :mod:`services.gateway.documents`).

``POST /v1/traders/{id}/documents`` (multipart/form-data; scope ``ops`` or ``onboarding``),
``GET /v1/traders/{id}/documents``, ``GET /v1/documents/{id}`` (metadata) and
``GET /v1/documents/{id}/content`` (the file; scope ``ops`` only). Every route is scoped to the
client's tenant: another tenant's trader or document is a 404.
"""

from __future__ import annotations

from typing import Any

from flask import Response, current_app, g, url_for

from services.gateway import actors
from services.gateway.access import require
from services.gateway.documents import (
    ACCEPTED,
    EXTENSION,
    DocumentMissing,
    DocumentService,
    Stored,
    Upload,
    body_limit,
)
from services.gateway.documents.schemas import (
    DocumentListSchema,
    DocumentSchema,
    UploadFileSchema,
    UploadFormSchema,
)
from services.gateway.evidence import DocumentRecord
from services.gateway.reasons import reason
from services.gateway.sealing import SealingError
from shared.errors import Conflict, NotFound
from shared.inputs import max_body
from shared.openapi import Blueprint

bp = Blueprint("documents", __name__, url_prefix="/v1",
               description="Supporting documents of traders (identity documents, register "
                           "extracts, ...), sealed at rest")

#: The headers a document file is served with: downloaded, never rendered or sniffed in our
#: origin, never cached.
DOWNLOAD_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Content-Security-Policy": "sandbox; default-src 'none'; frame-ancestors 'none'",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}


def service() -> DocumentService:
    found: DocumentService = current_app.extensions[EXTENSION]
    return found


def view(record: DocumentRecord, reasons: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A document as the API shows it."""
    codes = (record.name_check or {}).get("reasons") or []
    return {**vars(record),
            "reasons": reasons if reasons is not None else [reason(c) for c in codes],
            "content_url": url_for("documents.document_content", document_id=record.id)}


def download(record: DocumentRecord) -> Response:
    """The plain file of ``record`` as an attachment, with :data:`DOWNLOAD_HEADERS`."""
    try:
        data = service().content(record)
    except DocumentMissing as e:
        raise NotFound(f"The file of document {record.id} is missing from the storage.") from e
    except SealingError as e:
        raise Conflict(f"The file of document {record.id} cannot be unsealed with the "
                       "configured evidence sealing keys, or does not match its SHA-256.") from e
    filename = f"{record.kind}-{record.id}.{ACCEPTED.get(record.content_type, 'bin')}"
    response = Response(data, mimetype=record.content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers.update(DOWNLOAD_HEADERS)
    return response


def stored_view(stored: Stored) -> dict[str, Any]:
    return view(stored.record, stored.reasons)


@bp.post("/traders/<trader_id>/documents")
@max_body(body_limit)
@bp.arguments(UploadFormSchema(), location="form")
@bp.arguments(UploadFileSchema(), location="files")
@bp.response(201, DocumentSchema())
@require("ops", "onboarding")
def upload_document(form: dict[str, Any], files: dict[str, Any], trader_id: str) -> Any:
    """Upload a supporting document of the trader: a PDF, JPEG or PNG file (typed by its
    content) with its ``kind``, issuing country, expiry and the name it shows. It is sealed with
    the evidence keys and kept; the name is compared with the trader's
    (``DOCUMENT_NAME_MISMATCH``); an expired identity document or eID assertion is refused."""
    actor = actors.current()
    stored = service().upload(trader_id, Upload(**form), files["file"].stream,
                              tenant=g.client.tenant, actor=actor.label,
                              staff_id=actor.staff_id)
    location = url_for("documents.get_document", document_id=stored.record.id)
    return stored_view(stored), 201, {"Location": location}


@bp.get("/traders/<trader_id>/documents")
@bp.response(200, DocumentListSchema())
@require("ops", "onboarding")
def list_documents(trader_id: str) -> dict[str, Any]:
    """The trader's supporting documents, newest first (metadata only)."""
    svc = service()
    if svc.evidence.first_verification_at(trader_id, tenant=g.client.tenant) is None:
        raise NotFound(f"No verification for trader {trader_id}.")
    return {"trader_id": trader_id,
            "documents": [view(d) for d in svc.evidence.documents(trader_id,
                                                                   tenant=g.client.tenant)]}


@bp.get("/documents/<document_id>")
@bp.response(200, DocumentSchema())
@require("ops", "onboarding")
def get_document(document_id: str) -> dict[str, Any]:
    """A supporting document's metadata."""
    return view(service().get(document_id, tenant=g.client.tenant))


@bp.get("/documents/<document_id>/content")
@bp.response(200, description="The document file, as an attachment",
             content_type="application/octet-stream")
@require("ops")
def document_content(document_id: str) -> Response:
    """The document file (scope ``ops``): ``Content-Disposition: attachment``,
    ``X-Content-Type-Options: nosniff`` and a sandboxing ``Content-Security-Policy``."""
    return download(service().get(document_id, tenant=g.client.tenant))
