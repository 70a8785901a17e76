"""Casework in the evidence log: review decisions, trader states (Art 30(3)), statements of
reasons (Art 17) and complaints (Art 20, 30(4)); reads and the writes of a transaction.

The rules (who may decide what, which state follows which) are in
:mod:`services.gateway.casework`; this module only stores and reads. Every write is a
:class:`CaseworkWrites` method of a :class:`~services.gateway.evidence.Transaction`, so that a
decision, the verification it makes, its statement, the trader's state, the staff action and
the webhooks stand or fall together.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from services.gateway.evidence.db import Database, _utcnow
from services.gateway.evidence.schema import (
    UtcDateTime,
    _trader,
    complaints_table,
    documents_table,
    reviews_table,
    staff_actions_table,
    statements_table,
    traders_table,
    verifications_table,
)
from services.gateway.evidence.verifications import (
    _RECORD_COLUMNS,
    VerificationRecord,
    _record_from_row,
)
from services.gateway.reasons import Verdict

if TYPE_CHECKING:
    from datetime import datetime

    from services.gateway.evidence import EvidenceLog

#: The trader row's casework columns, as :meth:`Casework.trader_state` returns them.
_STATE_COLUMNS = ("state", "state_changed_at", "correction", "suspended_at", "reinstated_at",
                  "approval_review_id", "correction_due_at", "suspension_due_sent_at",
                  "current_verification_id", "current_verdict", "ended_at")

#: The trader's casework columns (parameters ``tenant``, ``trader_id``), built once; locked
#: until the transaction ends on PostgreSQL (SQLite's BEGIN IMMEDIATE already excludes writers).
_STATE = sa.select(*(traders_table.c[n] for n in _STATE_COLUMNS)).where(
    traders_table.c.tenant_id == sa.bindparam("tenant"),
    traders_table.c.trader_id == sa.bindparam("trader_id"))
_STATE_LOCKED = _STATE.with_for_update()
_INSERT_STATEMENT = sa.insert(statements_table)


def new_id() -> str:
    return uuid.uuid4().hex


class CaseworkWrites:
    """The part of a :class:`~services.gateway.evidence.Transaction` that writes casework."""

    log: EvidenceLog
    conn: sa.Connection

    def insert_verification(self, record: VerificationRecord, *, copy_sealed_from: str) -> None:
        """Insert a settled (manual) verification, with the sealed submission of
        ``copy_sealed_from`` (so that a re-verification of the trader still finds it), and
        point the trader at it."""
        t = verifications_table
        sealed = self.conn.execute(sa.select(t.c.sealed_submission)
                                   .where(t.c.id == copy_sealed_from)).scalar_one_or_none()
        row = {name: getattr(record, name) for name in _RECORD_COLUMNS}
        self.conn.execute(sa.insert(t).values(**row, sealed_submission=sealed))
        self.log._point_trader_at(self.conn, record)

    def point_trader_at(self, verification_id: str, verdict: str, *, tenant: str,
                        trader_id: str) -> None:
        """Make ``verification_id`` the trader's current verification again (an approval kept
        over a later automated verification with the same facts)."""
        t, tt = verifications_table, traders_table
        created = self.conn.execute(sa.select(t.c.created_at)
                                    .where(t.c.id == verification_id)).scalar_one()
        self.conn.execute(sa.update(tt).where(*_trader(tenant, trader_id)).values(
            current_verification_id=verification_id, current_verdict=verdict,
            current_created_at=created, updated_at=_utcnow()))

    def insert_review(self, **values: Any) -> None:
        self.conn.execute(sa.insert(reviews_table).values(**values))

    def insert_statement(self, **values: Any) -> None:
        self.conn.execute(_INSERT_STATEMENT, values)

    def insert_complaint(self, **values: Any) -> None:
        self.conn.execute(sa.insert(complaints_table).values(**values))

    def decide_complaint(self, complaint_id: str, **values: Any) -> bool:
        """Record the complaint's outcome; False if it was decided meanwhile."""
        c = complaints_table
        return self.conn.execute(sa.update(c).where(c.c.id == complaint_id,
                                                    c.c.status == "open")
                                 .values(**values)).rowcount == 1

    def lock_trader(self, trader_id: str, *, tenant: str) -> dict[str, Any] | None:
        """The trader's casework columns, its row locked until the transaction ends."""
        query = _STATE_LOCKED if self.log.dialect == "postgresql" else _STATE
        row = self.conn.execute(query, {"tenant": tenant, "trader_id": trader_id}
                                ).mappings().first()
        return dict(row) if row else None

    def update_trader(self, trader_id: str, *, tenant: str, **values: Any) -> None:
        """Set the trader's casework columns (``state``, ``correction``, ...)."""
        self.conn.execute(sa.update(traders_table).where(*_trader(tenant, trader_id))
                          .values(**values))

    def add_action(self, *, tenant: str, actor: str, action: str, trader_id: str,
                   staff_id: str | None = None, verification_id: str | None = None,
                   detail: dict[str, Any] | None = None) -> None:
        """A staff action in this transaction (the audit trail)."""
        self.conn.execute(sa.insert(staff_actions_table).values(
            id=new_id(), at=_utcnow(), actor=actor, action=action, tenant_id=tenant,
            trader_id=trader_id, verification_id=verification_id, detail=detail,
            staff_id=staff_id))


class Casework(Database):
    """Reads of the casework tables."""

    def trader_state(self, trader_id: str, *, tenant: str) -> dict[str, Any] | None:
        """The trader's Art 30(3) state and correction, its approval in force; None if the log
        has no row for it."""
        with self._read() as conn:
            row = conn.execute(_STATE, {"tenant": tenant, "trader_id": trader_id}
                               ).mappings().first()
        return dict(row) if row else None

    def review(self, review_id: str, *, tenant: str) -> dict[str, Any] | None:
        r = reviews_table
        with self._read() as conn:
            row = conn.execute(sa.select(r).where(r.c.id == review_id, r.c.tenant_id == tenant)
                               ).mappings().first()
        return dict(row) if row else None

    def reviews(self, trader_id: str, *, tenant: str) -> list[dict[str, Any]]:
        r = reviews_table
        with self._read() as conn:
            return [dict(row) for row in conn.execute(
                sa.select(r).where(r.c.tenant_id == tenant, r.c.trader_id == trader_id)
                .order_by(r.c.decided_at.desc())).mappings()]

    def statement(self, statement_id: str, *, tenant: str) -> dict[str, Any] | None:
        s = statements_table
        with self._read() as conn:
            row = conn.execute(sa.select(s).where(s.c.id == statement_id,
                                                  s.c.tenant_id == tenant)).mappings().first()
        return dict(row) if row else None

    def statements(self, trader_id: str, *, tenant: str) -> list[dict[str, Any]]:
        s = statements_table
        with self._read() as conn:
            return [dict(row) for row in conn.execute(
                sa.select(s).where(s.c.tenant_id == tenant, s.c.trader_id == trader_id)
                .order_by(s.c.created_at.desc())).mappings()]

    def complaint(self, complaint_id: str, *, tenant: str) -> dict[str, Any] | None:
        c = complaints_table
        with self._read() as conn:
            row = conn.execute(sa.select(c).where(c.c.id == complaint_id,
                                                  c.c.tenant_id == tenant)).mappings().first()
        return dict(row) if row else None

    def complaints(self, *, tenant: str, trader_id: str | None = None,
                   status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
        """Complaints of the tenant (of one trader, of one status), oldest first."""
        c = complaints_table
        query = sa.select(c).where(c.c.tenant_id == tenant)
        if trader_id is not None:
            query = query.where(c.c.trader_id == trader_id)
        if status is not None:
            query = query.where(c.c.status == status)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(
                query.order_by(c.c.received_at, c.c.id).limit(limit)).mappings()]

    def review_queue(self, *, tenant: str, limit: int = 200,
                     after: tuple[datetime, str] | None = None) -> list[VerificationRecord]:
        """The current verifications of the tenant's traders that a person must decide
        (``needs_review``, relationship ongoing), the longest waiting first (since the
        verification was made); ``limit`` of them after ``after`` (keyset: the previous
        page's last ``(created_at, trader_id)``), walked in the traders' ``(tenant_id,
        current_verdict, current_created_at, trader_id)`` index: a page costs the same at any
        depth and size, however many past verifications once needed review."""
        t, tt = verifications_table, traders_table
        query = (sa.select(t).select_from(tt)
                 .join(t, t.c.id == tt.c.current_verification_id)
                 .where(tt.c.tenant_id == tenant,
                        tt.c.current_verdict == Verdict.NEEDS_REVIEW.value,
                        tt.c.ended_at.is_(None))
                 .order_by(tt.c.current_created_at, tt.c.trader_id).limit(limit))
        if after is not None:
            query = query.where(sa.tuple_(tt.c.current_created_at, tt.c.trader_id) > sa.tuple_(
                sa.literal(after[0], UtcDateTime), sa.literal(after[1])))
        with self._read() as conn:
            return [_record_from_row(row) for row in conn.execute(query).mappings()]

    def trader_documents(self, trader_id: str, ids: list[str], *,
                         tenant: str) -> list[dict[str, Any]]:
        """The documents ``ids`` of the trader (kind, expiry, upload), those that exist."""
        d = documents_table
        if not ids:
            return []
        with self._read() as conn:
            return [dict(row) for row in conn.execute(
                sa.select(d.c.id, d.c.kind, d.c.expires_on, d.c.sha256, d.c.uploaded_at,
                          d.c.name_check)
                .where(d.c.tenant_id == tenant, d.c.trader_id == trader_id,
                       d.c.id.in_(ids))).mappings()]

    def documents_of(self, trader_id: str, *, tenant: str) -> list[dict[str, Any]]:
        """The trader's documents (no file, no name shown), newest first."""
        d = documents_table
        with self._read() as conn:
            return [dict(row) for row in conn.execute(
                sa.select(d.c.id, d.c.kind, d.c.expires_on, d.c.sha256, d.c.uploaded_at,
                          d.c.uploaded_by, d.c.name_check)
                .where(d.c.tenant_id == tenant, d.c.trader_id == trader_id)
                .order_by(d.c.uploaded_at.desc())).mappings()]
