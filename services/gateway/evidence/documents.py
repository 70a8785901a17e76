"""Supporting documents in the evidence log: their metadata rows and the staff action that
records each upload (issue 12 point 2). The files themselves are kept by a
:class:`~services.gateway.documents.storage.DocumentStorage`; ``name_shown`` is sealed here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from services.gateway.evidence.db import Database, _utcnow
from services.gateway.evidence.schema import documents_table, staff_actions_table
from services.gateway.sealing import SealingError


@dataclass
class DocumentRecord:
    """One supporting document as the evidence log keeps it (``name_shown`` unsealed)."""

    id: str
    tenant_id: str
    trader_id: str
    kind: str
    issuing_country: str | None
    expires_on: date | None
    name_shown: str | None
    content_type: str
    size_bytes: int
    sha256: str
    storage: str
    storage_key: str
    name_check: dict[str, Any] | None
    uploaded_at: datetime
    uploaded_by: str
    staff_id: str | None


class Documents(Database):
    """The ``documents`` table."""

    def seal_file(self, plain: bytes) -> bytes:
        """A document file sealed with the evidence sealing keys (the first one)."""
        return self._sealer.seal_bytes(plain)

    def unseal_file(self, sealed: bytes) -> bytes:
        """A sealed document file opened with any configured key (rotation-safe)."""
        return self._sealer.unseal_bytes(sealed)

    def add_document(self, record: DocumentRecord, verification_id: str | None = None) -> None:
        """Keep the document's row and the ``document_uploaded`` staff action (on
        ``verification_id``, the trader's verification it was checked against), in one
        transaction (the file is already in its storage)."""
        sealed_name = (self._sealer.seal({"name": record.name_shown})
                       if record.name_shown is not None else None)
        values = {**vars(record), "name_shown": sealed_name}
        with self._write() as conn:
            conn.execute(sa.insert(documents_table).values(**values))
            conn.execute(sa.insert(staff_actions_table).values(
                id=uuid.uuid4().hex, at=_utcnow(), actor=record.uploaded_by,
                action="document_uploaded", tenant_id=record.tenant_id,
                trader_id=record.trader_id, staff_id=record.staff_id,
                verification_id=verification_id,
                detail={"document_id": record.id, "kind": record.kind,
                        "sha256": record.sha256}))

    def document(self, document_id: str, *, tenant: str) -> DocumentRecord | None:
        """The document of ``tenant`` with that id, or None (another tenant's too)."""
        d = documents_table
        with self._read() as conn:
            row = conn.execute(sa.select(d).where(d.c.id == document_id,
                                                  d.c.tenant_id == tenant)).mappings().first()
        return self._document_of(row) if row is not None else None

    def documents(self, trader_id: str, *, tenant: str) -> list[DocumentRecord]:
        """The trader's documents, newest first."""
        d = documents_table
        query = (sa.select(d).where(d.c.tenant_id == tenant, d.c.trader_id == trader_id)
                 .order_by(d.c.uploaded_at.desc(), d.c.id))
        with self._read() as conn:
            return [self._document_of(row) for row in conn.execute(query).mappings()]

    def document_files(self, trader_id: str, *, tenant: str) -> list[tuple[str, str]]:
        """``(storage, storage_key)`` of the trader's documents kept outside the database (the
        purge deletes those files after its SQL transaction)."""
        d = documents_table
        query = sa.select(d.c.storage, d.c.storage_key).where(
            d.c.tenant_id == tenant, d.c.trader_id == trader_id, d.c.storage != "database")
        with self._read() as conn:
            return [(storage, key) for storage, key in conn.execute(query).all()]

    def _document_of(self, row: sa.RowMapping) -> DocumentRecord:
        values = dict(row)
        token = values["name_shown"]
        try:
            values["name_shown"] = self._sealer.unseal(token)["name"] if token else None
        except SealingError:
            values["name_shown"] = None  # its key is gone: the rest is still worth showing
        return DocumentRecord(**values)
