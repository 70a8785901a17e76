"""Disclosures to authorities (DSA Art 30(6)) and legal holds, on the tables of migration 0009.

- :meth:`Disclosures.dossier`: everything the log holds about one trader of a tenant, the
  declared Art 30(1) data unsealed: what a bundle (:mod:`services.gateway.disclosures`) holds;
- :meth:`Disclosures.log_disclosure` / :meth:`Disclosures.disclosure`: the ``disclosures`` log
  (who, to whom, when, under what basis, what);
- :meth:`Disclosures.place_hold` / :meth:`Disclosures.release_hold` /
  :meth:`Disclosures.held_traders`: legal holds, which the retention purge respects;
- :meth:`Disclosures.pseudonymise_disclosures`: what the purge does to the log (the row stays,
  the purged trader's id is replaced by its pseudonym) and :meth:`Disclosures.delete_holds`
  (a purged trader's released holds go with it).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from services.gateway.evidence.db import Database, _utcnow
from services.gateway.evidence.schema import (
    complaints_table,
    disclosures_table,
    documents_table,
    legal_holds_table,
    reviews_table,
    staff_actions_table,
    statements_table,
    traders_table,
    verifications_table,
)
from services.gateway.sealing import SealingError

#: The most rows of one kind a dossier holds (a trader has a few dozen in practice).
DOSSIER_LIMIT = 10_000


def _plain(row: sa.RowMapping, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """A row as JSON-ready values (timestamps and dates ISO 8601)."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        if name in skip:
            continue
        out[name] = value.isoformat() if hasattr(value, "isoformat") else value
    return out


class Disclosures(Database):
    """The disclosures log and legal holds (a part of :class:`~services.gateway.evidence.
    EvidenceLog`)."""

    def trader_known(self, trader_id: str, *, tenant: str) -> bool:
        """Whether the tenant has a trader of this id (a trader row or a verification)."""
        tt, t = traders_table, verifications_table
        with self._read() as conn:
            if conn.execute(sa.select(tt.c.trader_id).where(
                    tt.c.tenant_id == tenant, tt.c.trader_id == trader_id)).first():
                return True
            return conn.execute(sa.select(t.c.id).where(
                t.c.tenant_id == tenant, t.c.trader_id == trader_id).limit(1)).first() is not None

    def dossier(self, trader_id: str, *, tenant: str) -> dict[str, Any]:
        """Everything the log holds about the tenant's trader, oldest first: the trader's row,
        every verification with its checks and evidence and its declared (unsealed)
        submission, staff actions, documents (metadata and hashes; their files are read
        through the document service, whatever storage keeps them), reviews,
        statements, complaints, legal holds and earlier disclosures naming it."""
        t, tt = verifications_table, traders_table
        docs = documents_table
        with self._read() as conn:
            trader = conn.execute(sa.select(tt).where(
                tt.c.tenant_id == tenant, tt.c.trader_id == trader_id)).mappings().first()
            rows = conn.execute(
                sa.select(t).where(t.c.tenant_id == tenant, t.c.trader_id == trader_id)
                .order_by(t.c.created_at, t.c.id).limit(DOSSIER_LIMIT)).mappings().all()
            verifications = []
            for row in rows:
                item = _plain(row, skip=("sealed_submission", "tenant_id", "trader_id"))
                token = row["sealed_submission"]
                try:
                    item["declared"] = self._sealer.unseal(token) if token else None
                    item["declared_status"] = "unsealed" if token else "not kept"
                except SealingError:
                    item["declared"] = None
                    item["declared_status"] = "cannot be unsealed with the configured keys"
                verifications.append(item)

            def rows_of(table: sa.Table, order: sa.ColumnElement[Any]) -> list[dict[str, Any]]:
                query = (sa.select(table)
                         .where(table.c.tenant_id == tenant, table.c.trader_id == trader_id)
                         .order_by(order, table.c.id).limit(DOSSIER_LIMIT))
                return [_plain(r, skip=("tenant_id", "trader_id"))
                        for r in conn.execute(query).mappings()]

            documents = rows_of(docs, docs.c.uploaded_at)
            for document in documents:
                if document.get("name_shown"):  # sealed personal data: unseal it
                    try:
                        shown = self._sealer.unseal(document["name_shown"])
                        document["name_shown"] = shown.get("name", shown)
                    except SealingError:
                        document["name_shown"] = None
            return {
                "trader_id": trader_id,
                "tenant": tenant,
                "trader": _plain(trader, skip=("tenant_id", "trader_id")) if trader else None,
                "verifications": verifications,
                "staff_actions": rows_of(staff_actions_table, staff_actions_table.c.at),
                "documents": documents,
                "reviews": rows_of(reviews_table, reviews_table.c.decided_at),
                "statements": rows_of(statements_table, statements_table.c.created_at),
                "complaints": rows_of(complaints_table, complaints_table.c.received_at),
                "legal_holds": rows_of(legal_holds_table, legal_holds_table.c.placed_at),
            }

    # -- the disclosures log -------------------------------------------------------------------

    def log_disclosure(self, *, tenant: str, actor: str, staff_id: str | None, authority: str,
                       reference: str, legal_basis: str, trader_ids: list[str],
                       files: dict[str, str], manifest_sha256: str, key_id: str,
                       at: datetime, disclosure_id: str) -> None:
        """Record one disclosure (its id chosen by the caller: the manifest names it)."""
        with self._write() as conn:
            conn.execute(sa.insert(disclosures_table).values(
                id=disclosure_id, tenant_id=tenant, at=at, actor=actor, staff_id=staff_id,
                authority=authority, reference=reference, legal_basis=legal_basis,
                trader_ids=list(trader_ids), files=dict(files),
                manifest_sha256=manifest_sha256, key_id=key_id))

    def disclosure(self, disclosure_id: str, *, tenant: str) -> dict[str, Any] | None:
        """One disclosure of the tenant, or None."""
        d = disclosures_table
        with self._read() as conn:
            row = conn.execute(sa.select(d).where(d.c.id == disclosure_id,
                                                  d.c.tenant_id == tenant)).mappings().first()
        return _plain(row, skip=("tenant_id",)) if row else None

    def disclosures(self, *, tenant: str, limit: int = 100) -> list[dict[str, Any]]:
        """The tenant's disclosures, newest first."""
        d = disclosures_table
        query = sa.select(d).where(d.c.tenant_id == tenant).order_by(
            d.c.at.desc(), d.c.id).limit(limit)
        with self._read() as conn:
            return [_plain(r, skip=("tenant_id",)) for r in conn.execute(query).mappings()]

    def pseudonymise_disclosures(self, trader_id: str, pseudonym: str, *, tenant: str,
                                 dry_run: bool = False) -> int:
        """Replace the tenant's trader's id by ``pseudonym`` in every disclosure naming it
        (the retention purge: the log of what was disclosed stays, the trader's id does not);
        the rows changed (or, with ``dry_run``, that would change)."""
        d = disclosures_table
        changed = 0
        with self._write(rollback=dry_run) as conn:
            rows = conn.execute(self._for_update(
                sa.select(d.c.id, d.c.trader_ids).where(d.c.tenant_id == tenant))).all()
            for disclosure_id, ids in rows:
                if trader_id not in (ids or []):
                    continue
                new = [pseudonym if i == trader_id else i for i in ids]
                conn.execute(sa.update(d).where(d.c.id == disclosure_id).values(trader_ids=new))
                changed += 1
        return changed

    # -- legal holds -----------------------------------------------------------------------------

    def place_hold(self, trader_id: str, *, tenant: str, reason: str,
                   by: str) -> dict[str, Any]:
        """Place a legal hold on the tenant's trader (or return the one in force)."""
        h = legal_holds_table
        with self._write() as conn:
            row = conn.execute(self._for_update(sa.select(h).where(
                h.c.tenant_id == tenant, h.c.trader_id == trader_id,
                h.c.released_at.is_(None)))).mappings().first()
            if row:
                return _plain(row, skip=("tenant_id",))
            values = {"id": uuid.uuid4().hex, "tenant_id": tenant, "trader_id": trader_id,
                      "placed_at": _utcnow(), "placed_by": by, "reason": reason,
                      "released_at": None, "released_by": None}
            conn.execute(sa.insert(h).values(**values))
        values.pop("tenant_id")
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in values.items()}

    def release_hold(self, trader_id: str, *, tenant: str, by: str) -> bool:
        """Release the hold in force on the tenant's trader; False if there was none."""
        h = legal_holds_table
        with self._write() as conn:
            done = conn.execute(sa.update(h).where(
                h.c.tenant_id == tenant, h.c.trader_id == trader_id,
                h.c.released_at.is_(None)).values(released_at=_utcnow(), released_by=by))
        return bool(done.rowcount)

    def hold(self, trader_id: str, *, tenant: str) -> dict[str, Any] | None:
        """The hold in force on the tenant's trader, or None."""
        h = legal_holds_table
        with self._read() as conn:
            row = conn.execute(sa.select(h).where(
                h.c.tenant_id == tenant, h.c.trader_id == trader_id,
                h.c.released_at.is_(None))).mappings().first()
        return _plain(row, skip=("tenant_id",)) if row else None

    def held_traders(self) -> set[tuple[str, str]]:
        """``(tenant, trader id)`` of every trader under a hold in force, in every tenant."""
        h = legal_holds_table
        with self._read() as conn:
            return {(tenant, trader) for tenant, trader in conn.execute(
                sa.select(h.c.tenant_id, h.c.trader_id).where(h.c.released_at.is_(None)))}

    def delete_holds(self, trader_id: str, *, tenant: str, dry_run: bool = False) -> int:
        """Delete the tenant's trader's released holds (the purge; a hold in force keeps the
        trader from being purged at all); the rows deleted."""
        h = legal_holds_table
        with self._write(rollback=dry_run) as conn:
            return conn.execute(sa.delete(h).where(
                h.c.tenant_id == tenant, h.c.trader_id == trader_id,
                h.c.released_at.is_not(None))).rowcount
