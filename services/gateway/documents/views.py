"""The documents on the staff dashboard: the ``#documents`` section of a trader's page
(``templates/ops/_documents.html``), the upload form and the file, on the ``ops`` blueprint
(so its sign-in check, CSRF check and security headers apply).

Uploading and opening a file need the ``reviewer`` role (or ``admin``); a ``viewer`` sees the
list only, and is answered 403 on the file.
"""

from __future__ import annotations

from typing import Any

from flask import flash, redirect, request, url_for

from services.gateway import actors, dashboard
from services.gateway.documents import Upload, body_limit
from services.gateway.documents.api import download, service
from services.gateway.documents.schemas import UploadFormSchema
from services.gateway.evidence import DocumentRecord
from shared.inputs import max_body

bp = dashboard.bp


@bp.context_processor
def _documents_context() -> dict[str, Any]:
    return {"trader_documents": _trader_documents}


def _trader_documents(trader_id: str) -> dict[str, Any]:
    """What ``_documents.html`` shows: the trader's documents and what the actor may do."""
    actor = actors.current()
    documents: list[DocumentRecord] = service().evidence.documents(trader_id,
                                                                   tenant=actor.tenant)
    return {"documents": documents, "may_open": actor.may("reviewer"),
            "kinds": UploadFormSchema().fields["kind"].validate.choices}  # type: ignore[union-attr]


@bp.post("/traders/<trader_id>/documents")
@max_body(body_limit)
def upload_document(trader_id: str) -> Any:
    """The upload form (like ``POST /v1/traders/{id}/documents``); reviewer or admin."""
    actor = actors.current()
    actor.require("reviewer")
    form = dashboard._load(UploadFormSchema(), dashboard._given(request.form), "form")
    file = request.files.get("file")
    stream = file.stream if file is not None and file.filename else None
    stored = service().upload(trader_id, Upload(**form), stream, tenant=actor.tenant,
                              actor=actor.label, staff_id=actor.staff_id)
    message = f"Document uploaded ({stored.record.kind.replace('_', ' ')}, SHA-256 " \
              f"{stored.record.sha256[:12]}…)."
    if stored.reasons:
        message += " The name on it does not match the trader's name (DOCUMENT_NAME_MISMATCH)."
    flash(message)
    return redirect(url_for("ops.trader", trader_id=trader_id) + "#documents", 303)


@bp.get("/documents/<document_id>")
def document_file(document_id: str) -> Any:
    """The document file, as an attachment; reviewer or admin."""
    actor = actors.current()
    actor.require("reviewer")
    return download(service().get(document_id, tenant=actor.tenant))
