"""Supporting documents (issue 12 point 2): a trader's identification document, eID assertion,
register extract, bank statement... uploaded through ``POST /v1/traders/{id}/documents`` or the
dashboard, and kept as evidence.

- **Typed by content**: the first bytes decide (:func:`content_type_of`: PDF ``%PDF-`` with an
  ``%%EOF`` marker, JPEG ``FF D8 FF``, PNG's signature and ``IHDR`` header); the declared
  ``Content-Type`` and the file name are never trusted. Anything else, or an empty file, is a
  400 naming ``file``.
- **Limited in size**: ``TRACE30_GATEWAY_DOCUMENT_MAX_BYTES`` (10 MiB). A declared body larger
  than that plus :data:`FORM_OVERHEAD` is a 413 before a byte is read
  (:func:`shared.inputs.max_body`), a chunked one once it passes the limit; a file over the
  limit inside a body that fits is a 413 too.
- **Sealed at rest**: the file is encrypted with the evidence sealing keys (the evidence log's
  :class:`~services.gateway.sealing.Sealer`, so a key rotation covers documents too) before
  it reaches the storage backend (:mod:`.storage`: database by default, a folder or an
  S3-compatible bucket); the name the document shows is sealed in its row. The SHA-256 of the
  plain file is kept in the evidence (``documents.sha256``) and checked on every read.
- **Name check**: the name shown is compared with the trader's declared name (from its latest
  sealed submission) by :func:`shared.names.compare`, as the verdict compares names; no match is
  flagged ``name_check.match = false`` with the reason ``DOCUMENT_NAME_MISMATCH`` (30(1)(b)).
- **Expiry**: an identity document or eID assertion that expired is refused (400 naming
  ``expires_on``): it cannot support 30(1)(b). Nothing is stored.
- **Nothing half-stored**: the sealed file is written first, then the row and the
  ``document_uploaded`` staff action in one transaction; if that transaction fails the file is
  deleted again. Only a crash between the two leaves a file no row names: sealed, unreadable
  without the keys, under a random key; it is harmless and is not searched for.
- **Purge**: ``trace30 purge`` deletes the trader's rows (and ``document_blobs``) in its SQL
  transaction, then, after the commit, the files the other backends keep
  (:meth:`DocumentService.purge_files`); a dry run deletes nothing.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import IO, Any

from flask import Flask

from services.gateway.documents.storage import (
    DocumentMissing,
    DocumentStorage,
    StorageError,
    build_storage,
    new_key,
)
from services.gateway.evidence import DocumentRecord, EvidenceLog, VerificationRecord
from services.gateway.reasons import reason
from services.gateway.sealing import SealingError
from shared import names
from shared.errors import BadRequest, ContentTooLarge, NotFound, store_unavailable

__all__ = ["ACCEPTED", "FORM_OVERHEAD", "FOR_ITEM_B", "DocumentMissing", "DocumentService",
           "DocumentStorage", "StorageError", "Upload", "build_storage", "content_type_of"]

log = logging.getLogger(__name__)

#: The content types accepted, and the file extension each is served with.
ACCEPTED = {"application/pdf": "pdf", "image/jpeg": "jpg", "image/png": "png"}
#: The kinds of document that can support Art 30(1)(b) (and are refused once expired).
FOR_ITEM_B = ("identity_document", "eid_assertion")
#: What the upload's other form fields and the multipart framing may add to the file, bytes.
FORM_OVERHEAD = 64 * 1024
_PNG = b"\x89PNG\r\n\x1a\n"
#: Where a PDF's ``%%EOF`` marker is looked for: the end of the file (incremental updates and
#: trailing garbage some producers add stay within it).
_PDF_TAIL = 2048

EXTENSION = "trace30.documents"


def body_limit(config: Any) -> int:
    """The largest upload body: the file limit plus :data:`FORM_OVERHEAD`."""
    return int(config["GATEWAY_DOCUMENT_MAX_BYTES"]) + FORM_OVERHEAD


def content_type_of(data: bytes) -> str | None:
    """The type of a file from its bytes: one of :data:`ACCEPTED`, or None.

    >>> content_type_of(b"%PDF-1.7\\n1 0 obj<<>>endobj\\ntrailer<<>>\\n%%EOF\\n")
    'application/pdf'
    >>> content_type_of(b"%PDF-1.7 no end marker") is None
    True
    >>> content_type_of(bytes.fromhex("ffd8ffe000104a464946")), content_type_of(b"GIF89a")
    ('image/jpeg', None)
    >>> content_type_of(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00\\x00\\rIHDR" + bytes(17))
    'image/png'
    """
    if data.startswith(b"%PDF-") and b"%%EOF" in data[-_PDF_TAIL:]:
        return "application/pdf"
    if data.startswith(b"\xff\xd8\xff") and len(data) > 3:
        return "image/jpeg"
    if data.startswith(_PNG) and data[12:16] == b"IHDR":
        return "image/png"
    return None


@dataclass
class Upload:
    """What an upload gives besides the file (validated by ``schemas.UploadFormSchema``)."""

    kind: str
    issuing_country: str | None = None
    expires_on: date | None = None
    name_shown: str | None = None


@dataclass
class Stored:
    """An upload kept: its record and the reasons it raised (``DOCUMENT_NAME_MISMATCH``)."""

    record: DocumentRecord
    reasons: list[dict[str, str]] = field(default_factory=list)


class DocumentService:
    """Uploads, reads and purges supporting documents of one evidence log and storage."""

    def __init__(self, evidence: EvidenceLog, storage: DocumentStorage, *,
                 max_bytes: int) -> None:
        self.evidence, self.storage, self.max_bytes = evidence, storage, max_bytes

    # -- upload --------------------------------------------------------------------------------

    def read_file(self, stream: IO[bytes] | None) -> tuple[bytes, str]:
        """The file's bytes and content type; 400 naming ``file`` if it is missing, empty or
        of a type not accepted, 413 if it is larger than the limit."""
        if stream is None:
            raise BadRequest("The document file is missing.",
                             errors={"file": ["Missing: send the document as the form field "
                                              "'file' (multipart/form-data)."]})
        data = stream.read(self.max_bytes + 1)
        if len(data) > self.max_bytes:
            raise ContentTooLarge(
                f"The document is larger than {self.max_bytes} bytes, the most accepted.",
                errors={"file": [f"Larger than {self.max_bytes} bytes."]})
        if not data:
            raise BadRequest("The document file is empty.", errors={"file": ["Empty."]})
        content_type = content_type_of(data)
        if content_type is None:
            raise BadRequest(
                "The document is not a PDF, JPEG or PNG file (its content decides, not its "
                "name or declared type).",
                errors={"file": ["Must be a PDF, JPEG or PNG file."]})
        return data, content_type

    def upload(self, trader_id: str, upload: Upload, stream: IO[bytes] | None, *,
               tenant: str, actor: str, staff_id: str | None = None,
               today: date | None = None) -> Stored:
        """Check, seal and keep a document of a trader of ``tenant`` (see the module doc)."""
        if self.evidence.first_verification_at(trader_id, tenant=tenant) is None:
            raise NotFound(f"No verification for trader {trader_id}.")
        today = today or datetime.now(UTC).date()
        if upload.kind in FOR_ITEM_B and upload.expires_on is not None and \
                upload.expires_on < today:
            raise BadRequest(
                "The document has expired: expired documents cannot support 30(1)(b).",
                errors={"expires_on": ["Expired: expired documents cannot support 30(1)(b)."]})
        data, content_type = self.read_file(stream)
        current = self._current(trader_id, tenant=tenant)
        name_check, reasons = self._name_check(current, upload.name_shown)
        record = DocumentRecord(
            id=uuid.uuid4().hex, tenant_id=tenant, trader_id=trader_id, kind=upload.kind,
            issuing_country=upload.issuing_country, expires_on=upload.expires_on,
            name_shown=upload.name_shown, content_type=content_type, size_bytes=len(data),
            sha256=hashlib.sha256(data).hexdigest(), storage=self.storage.name,
            storage_key=new_key(), name_check=name_check, uploaded_at=datetime.now(UTC),
            uploaded_by=actor, staff_id=staff_id)
        self.storage.put(record.storage_key, self.evidence.seal_file(data))
        try:
            self.evidence.add_document(record, current.id if current else None)
        except BaseException:
            try:
                self.storage.delete(record.storage_key)
            except Exception:  # the store that failed the row may fail this too: say so
                log.exception("a document file whose row failed could not be deleted "
                              "(sealed, named by no row)", extra={"document_id": record.id})
            raise
        log.info("document uploaded", extra={"document_id": record.id, "kind": record.kind,
                                             "size_bytes": record.size_bytes,
                                             "storage": record.storage})
        return Stored(record, reasons)

    def _current(self, trader_id: str, *, tenant: str) -> VerificationRecord | None:
        """The trader's current verification, else its latest one."""
        return (self.evidence.current(trader_id, tenant=tenant)
                or next(iter(self.evidence.history(trader_id, limit=1, tenant=tenant)), None))

    def _name_check(self, current: VerificationRecord | None,
                    name_shown: str | None) -> tuple[dict[str, Any], list[dict[str, str]]]:
        if not name_shown:
            return {"match": None, "checked": False, "detail": "no name given"}, []
        declared, country = self._declared_name(current)
        if not declared:
            return {"match": None, "checked": False,
                    "detail": "the trader declared no name"}, []
        m = names.compare(name_shown, declared, country)
        check: dict[str, Any] = {"match": m.verdict != "no_match", "checked": True,
                                 "score": round(m.score, 3), "verdict": m.verdict,
                                 "compared_with": "declared_name"}
        reasons = [] if check["match"] else [reason("DOCUMENT_NAME_MISMATCH")]
        check["reasons"] = [r["code"] for r in reasons]
        return check, reasons

    def _declared_name(self, record: VerificationRecord | None
                       ) -> tuple[str | None, str | None]:
        """The name (and address country) the trader declared in ``record``'s submission."""
        if record is None:
            return None, None
        submission = record.submission
        try:
            submission = self.evidence.private_submission(record.id) or submission
        except SealingError:
            log.warning("the trader's sealed submission does not open; using the redacted one",
                        extra={"verification": record.id})
        name = submission.get("name")
        country = (submission.get("address") or {}).get("country_code")
        return (name if isinstance(name, str) else None,
                country if isinstance(country, str) else None)

    # -- read ----------------------------------------------------------------------------------

    def get(self, document_id: str, *, tenant: str) -> DocumentRecord:
        """The document of ``tenant``; 404 if there is none (or it is another tenant's)."""
        record = self.evidence.document(document_id, tenant=tenant)
        if record is None:
            raise NotFound(f"No document {document_id}.")
        return record

    def content(self, record: DocumentRecord) -> bytes:
        """The plain file of a document, unsealed and checked against its SHA-256."""
        sealed = self._storage_of(record).get(record.storage_key)
        data = self.evidence.unseal_file(sealed)
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise SealingError("the document's file does not match its SHA-256")
        return data

    def _storage_of(self, record: DocumentRecord) -> DocumentStorage:
        if record.storage != self.storage.name:
            raise StorageError(f"the document is kept by the {record.storage!r} storage, not "
                               f"the configured {self.storage.name!r}")
        return self.storage

    # -- purge ---------------------------------------------------------------------------------

    def files_of(self, trader_id: str, *, tenant: str) -> list[str]:
        """The keys of the trader's files kept outside the database, read before the purge's
        SQL delete. A file of another backend than the configured one could not be deleted
        afterwards: a :class:`StorageError` now, before anything is deleted."""
        keys = []
        for backend, key in self.evidence.document_files(trader_id, tenant=tenant):
            if backend != self.storage.name:
                raise StorageError(f"a document file is kept by the {backend!r} storage, not "
                                   f"the configured {self.storage.name!r}")
            keys.append(key)
        return keys

    def purge_files(self, keys: list[str]) -> int:
        """Delete the files :meth:`files_of` listed (after the purge's SQL commit); how many."""
        for key in keys:
            self.storage.delete(key)
        return len(keys)


def init_app(app: Flask, evidence: EvidenceLog) -> DocumentService:
    """Build the configured storage and the service, and mount the ``/v1`` routes (the
    dashboard's are on the ``ops`` blueprint: :mod:`.views`, imported by the app module)."""
    from services.gateway.documents import api

    storage = build_storage(app.config, evidence)
    documents = DocumentService(evidence, storage,
                                max_bytes=int(app.config["GATEWAY_DOCUMENT_MAX_BYTES"]))
    app.extensions[EXTENSION] = documents
    app.extensions["trace30.api"].register_blueprint(api.bp)
    app.register_error_handler(StorageError, store_unavailable("the document storage"))
    return documents
