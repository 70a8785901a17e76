"""Traders in the evidence log: their relationship, corrections (Art 30(3)), staff actions,
the dashboard's lists and the purge (Art 30(5)).

One row per trader (``(tenant_id, trader_id)``): its current (latest settled) verification and
verdict, and when the relationship ended (``ended_at``, set by ``POST /v1/traders/{id}/end``;
the retention purge deletes everything about a trader after the retention period).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from services.gateway.evidence import chain
from services.gateway.evidence.db import Database, _utcnow, log
from services.gateway.evidence.schema import (
    UtcDateTime,
    _trader,
    complaints_table,
    disclosures_table,
    document_blobs_table,
    documents_table,
    legal_holds_table,
    reviews_table,
    staff_actions_table,
    statements_table,
    traders_table,
    verifications_table,
    webhook_attempts_table,
    webhook_deliveries_table,
)
from services.gateway.evidence.verifications import VerificationRecord, _record_from_row
from services.gateway.reasons import Verdict
from shared.errors import BadRequest

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


@dataclass(frozen=True)
class SummaryKey:
    """Where a page of :meth:`Traders.trader_summaries` starts: after this trader, whose
    current verification was checked at ``checked_at`` (None: never checked, or no current
    verification; such traders come last)."""

    checked_at: datetime | None
    trader_id: str


@dataclass
class TraderSummary:
    """A trader as the staff dashboard lists it: its current verdict and verification."""

    trader_id: str
    verdict: str | None  # the current verdict; None: no settled verification yet
    ended_at: datetime | None  # when the relationship ended; None: ongoing
    current: VerificationRecord | None

    def key(self) -> SummaryKey:
        """The keyset position of this trader in :meth:`Traders.trader_summaries`."""
        return SummaryKey(self.current.checked_at if self.current is not None else None,
                          self.trader_id)


@dataclass
class PurgeOutcome:
    """What :meth:`Traders.purge_traders` did (or, in a dry run, would do)."""

    #: per ``(tenant, trader id)`` purged: rows deleted per table
    counts: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    #: ``(tenant, trader id)`` left whole: a legal hold in force
    held: list[tuple[str, str]] = field(default_factory=list)
    #: per ``(tenant, trader id)``: disclosures log entries whose trader id was replaced
    disclosures: dict[tuple[str, str], int] = field(default_factory=dict)
    #: released legal holds deleted
    holds_deleted: int = 0


def _by_tenant(traders: Sequence[tuple[str, str]]) -> dict[str, list[str]]:
    """``(tenant, trader id)`` pairs grouped by tenant, order kept, duplicates dropped."""
    grouped: dict[str, list[str]] = {}
    for tenant, trader_id in dict.fromkeys(traders):
        grouped.setdefault(tenant, []).append(trader_id)
    return grouped


def _among(conn: sa.Connection, column: sa.ColumnElement[Any],
           values: Sequence[Any]) -> sa.ColumnElement[bool]:
    """``column IN values``; on PostgreSQL ``column = ANY(array)``, one parameter: a purge
    batch's 500 ids as 500 parameters cost SQLAlchemy and psycopg more to render and parse
    (about 15 ms a statement) than the server to run the statement."""
    if conn.dialect.name == "postgresql":
        return column == sa.any_(sa.bindparam(None, list(values), type_=sa.ARRAY(column.type)))
    return column.in_(values)


class TraderHeld(RuntimeError):
    """The trader is under a legal hold in force: the purge must not delete it."""


class EndBeforeFirstVerification(ValueError):
    """An end of relationship dated before the trader's first verification."""

    def __init__(self, first: datetime) -> None:
        super().__init__(f"the trader's first verification was made at {first.isoformat()}")
        self.first = first

    def bad_request(self, field: str, first: str) -> BadRequest:
        """The 400 naming ``field`` (``ended_at`` in the API, ``ended_on`` on the dashboard),
        with the first verification's time as the caller shows it (``first``)."""
        return BadRequest(
            "The relationship cannot end before the trader's first verification.",
            errors={field: [f"Must not be before {first}, when the trader was first verified."]})





class TraderWrites:
    """The part of a :class:`~services.gateway.evidence.Transaction` that writes a trader's
    correction state."""

    conn: sa.Connection

    def request_correction(self, trader_id: str, due_at: datetime, *, tenant: str) -> datetime:
        """The trader must correct its data by ``due_at`` (an earlier open request stands);
        return the due time in force."""
        tt = traders_table
        self.conn.execute(sa.update(tt).where(*_trader(tenant, trader_id)).values(
            correction_due_at=sa.func.coalesce(tt.c.correction_due_at, due_at),
            suspension_due_sent_at=sa.case(
                (tt.c.correction_due_at.is_(None), sa.null()),
                else_=tt.c.suspension_due_sent_at)))
        due = self.conn.execute(sa.select(tt.c.correction_due_at)
                                .where(*_trader(tenant, trader_id))).scalar_one_or_none()
        return due or due_at

    def clear_correction(self, trader_id: str, *, tenant: str) -> bool:
        """The trader's data is in order again; return whether a correction was open."""
        tt = traders_table
        result = self.conn.execute(
            sa.update(tt).where(*_trader(tenant, trader_id))
            .where(tt.c.correction_due_at.is_not(None))
            .values(correction_due_at=None, suspension_due_sent_at=None))
        return bool(result.rowcount)

    def claim_suspension(self, trader_id: str, now: datetime, *, tenant: str) -> bool:
        """Mark the trader's ``trader.suspension_due`` as sent; False if it already was."""
        tt = traders_table
        return self.conn.execute(
            sa.update(tt).where(*_trader(tenant, trader_id))
            .where(tt.c.suspension_due_sent_at.is_(None))
            .values(suspension_due_sent_at=now)).rowcount == 1


class Traders(Database):
    """Traders: relationship, corrections, staff actions, lists and the purge."""

    def request_correction(self, trader_id: str, due_at: datetime, *, tenant: str) -> datetime:
        """:meth:`Transaction.request_correction` in a transaction of its own."""
        with self.transaction() as tx:
            return tx.request_correction(trader_id, due_at, tenant=tenant)

    def clear_correction(self, trader_id: str, *, tenant: str) -> bool:
        """:meth:`Transaction.clear_correction` in a transaction of its own."""
        with self.transaction() as tx:
            return tx.clear_correction(trader_id, tenant=tenant)

    def correction_due(self, trader_id: str, *, tenant: str) -> datetime | None:
        """When the trader must have corrected its data by, if a correction is open."""
        tt = traders_table
        with self._read() as conn:
            return conn.execute(sa.select(tt.c.correction_due_at)
                                .where(*_trader(tenant, trader_id))).scalar_one_or_none()

    def due_suspensions(self, now: datetime,
                        limit: int = 100) -> list[tuple[str, str, str, datetime]]:
        """Traders not corrected after their correction time (state ``correction_requested``,
        or still rejected), not yet reported, relationship
        ongoing, in every tenant: ``(tenant, trader_id, current verification id, correction
        due time)``. Each is then claimed with :meth:`Transaction.claim_suspension`, in the
        transaction that writes its webhook."""
        tt = traders_table
        due = (sa.select(tt.c.tenant_id, tt.c.trader_id, tt.c.current_verification_id,
                         tt.c.correction_due_at)
               .where(tt.c.correction_due_at <= now)
               # a correction open (migration 0008: state), or one opened before the state
               .where(sa.or_(tt.c.state == "correction_requested",
                             tt.c.current_verdict == Verdict.REJECTED.value))
               .where(tt.c.state != "suspended")
               .where(tt.c.suspension_due_sent_at.is_(None))
               .where(tt.c.ended_at.is_(None))
               .order_by(tt.c.correction_due_at).limit(limit))
        with self._read() as conn:
            return [(r[0], r[1], r[2], r[3]) for r in conn.execute(due).all()]

    def claim_due_suspensions(self, now: datetime,
                              limit: int = 100) -> list[tuple[str, str, str, datetime]]:
        """:meth:`due_suspensions`, each claimed (marked sent) by exactly one caller."""
        claimed = []
        for tenant, trader_id, verification_id, due_at in self.due_suspensions(now, limit):
            with self.transaction() as tx:
                if tx.claim_suspension(trader_id, now, tenant=tenant):
                    claimed.append((tenant, trader_id, verification_id, due_at))
        return claimed

    def end_relationship(self, trader_id: str, ended_at: datetime,
                         actor: str | None = None, *, tenant: str,
                         staff_id: str | None = None) -> bool:
        """Record that the platform's relationship with the trader ended at ``ended_at``, and
        with ``actor`` (who did it) a staff action, in the same transaction.

        False if the log knows nothing about the trader. A trader with only unsettled
        verifications gets a row without a current verification. An end before the trader's
        first verification raises :class:`EndBeforeFirstVerification` (it would make the
        evidence purgeable at once) and records nothing.
        """
        tt, t = traders_table, verifications_table
        with self._write() as conn:
            first = conn.execute(
                sa.select(sa.func.min(t.c.created_at))
                .where(t.c.tenant_id == tenant, t.c.trader_id == trader_id)
            ).scalar()
            if first is None:
                return False
            first = UtcDateTime().process_result_value(first, self.engine.dialect)
            if first is not None and ended_at < first:
                raise EndBeforeFirstVerification(first)
            updated = conn.execute(
                sa.update(tt).where(*_trader(tenant, trader_id))
                .values(ended_at=ended_at, updated_at=_utcnow())
            ).rowcount  # fmt: skip
            if not updated:
                conn.execute(
                    self._insert(tt)
                    .values(tenant_id=tenant, trader_id=trader_id, updated_at=_utcnow(),
                            ended_at=ended_at)
                    .on_conflict_do_update(
                        index_elements=[tt.c.tenant_id, tt.c.trader_id],
                        set_={"ended_at": ended_at},
                    )
                )
            if actor is not None:
                self._insert_action(conn, tenant=tenant, actor=actor, staff_id=staff_id,
                                    action="end_relationship",
                                    trader_id=trader_id,
                                    detail={"ended_at": ended_at.isoformat()})
            return True

    def first_verification_at(self, trader_id: str, *, tenant: str) -> datetime | None:
        """When the trader's first verification kept was made (the earliest possible end of
        the relationship), or None."""
        t = verifications_table
        with self._read() as conn:
            first = conn.execute(
                sa.select(sa.func.min(t.c.created_at))
                .where(t.c.tenant_id == tenant, t.c.trader_id == trader_id)
            ).scalar()
        return UtcDateTime().process_result_value(first, self.engine.dialect)

    def ended_before(self, cutoff: datetime) -> list[tuple[str, str]]:
        """``(tenant, trader_id)`` of the traders, in every tenant, whose relationship ended
        before ``cutoff`` (the purge's list; the operator runs it for the whole deployment),
        oldest first."""
        tt = traders_table
        query = (
            sa.select(tt.c.tenant_id, tt.c.trader_id)
            .where(tt.c.ended_at.is_not(None), tt.c.ended_at < cutoff)
            .order_by(tt.c.ended_at, tt.c.tenant_id, tt.c.trader_id)
        )
        with self._read() as conn:
            return [(tenant, trader_id) for tenant, trader_id in conn.execute(query).all()]

    def record_action(self, *, tenant: str, actor: str, action: str, trader_id: str,
                      verification_id: str | None = None, detail: dict[str, Any] | None = None,
                      staff_id: str | None = None) -> None:
        """Keep who did what to a trader, and when (the staff audit trail): ``actor`` is the
        :attr:`~services.gateway.actors.Actor.label`, ``staff_id`` the person's account."""
        with self._write() as conn:
            self._insert_action(conn, tenant=tenant, actor=actor, action=action,
                                trader_id=trader_id, verification_id=verification_id,
                                detail=detail, staff_id=staff_id)

    @staticmethod
    def _insert_action(conn: sa.Connection, *, tenant: str, actor: str, action: str,
                       trader_id: str, verification_id: str | None = None,
                       detail: dict[str, Any] | None = None,
                       staff_id: str | None = None) -> None:
        conn.execute(sa.insert(staff_actions_table).values(
            id=uuid.uuid4().hex, at=_utcnow(), actor=actor, action=action, tenant_id=tenant,
            trader_id=trader_id, verification_id=verification_id, detail=detail,
            staff_id=staff_id))

    def actions(self, trader_id: str, limit: int = 100, *, tenant: str) -> list[dict[str, Any]]:
        """The trader's staff actions, newest first."""
        s = staff_actions_table
        query = (sa.select(s.c.at, s.c.actor, s.c.action, s.c.verification_id, s.c.detail)
                 .where(s.c.tenant_id == tenant, s.c.trader_id == trader_id)
                 .order_by(s.c.at.desc()).limit(limit))
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def purge_trader(self, trader_id: str, *, tenant: str, dry_run: bool = False,
                     signer: Ed25519PrivateKey | None = None) -> dict[str, int]:
        """Delete everything the log holds about a trader of ``tenant``, in one transaction
        (the same trader id in another tenant is another trader, and stays).

        Returns the rows deleted per table: ``webhook_attempts``, ``webhook_deliveries``,
        ``staff_actions``, the casework's ``complaints``, ``statements``, ``reviews``,
        ``document_blobs``, ``documents``, then ``traders``, ``verifications``. With
        ``dry_run`` the same deletes run and are rolled back: the counts are what a purge would
        delete, and nothing is. (Document files kept outside the database by another storage
        backend are deleted by that backend, after this transaction.) A legal hold in force,
        checked in the deleting transaction, raises :class:`TraderHeld` and deletes nothing.
        """
        outcome = self.purge_traders([(tenant, trader_id)], dry_run=dry_run, signer=signer)
        if outcome.held:
            raise TraderHeld(trader_id)
        return outcome.counts[(tenant, trader_id)]

    def purge_traders(self, traders: Sequence[tuple[str, str]], *, dry_run: bool = False,
                      signer: Ed25519PrivateKey | None = None,
                      pseudonym: Callable[[str, str], str] | None = None) -> PurgeOutcome:
        """:meth:`purge_trader` for many ``(tenant, trader id)`` at once, in one transaction
        (the retention purge's batches: a statement per table and tenant, not per trader).

        Each trader still gets its own evidence-chain tombstone
        (:func:`~services.gateway.evidence.chain.tombstones`, listed for the batch at once) and
        its own counts. A trader under a
        legal hold in force (checked in this transaction) is left whole and listed in
        ``held``. With ``pseudonym`` (``(tenant, trader id) -> replacement``) the same
        transaction deletes the traders' released legal holds and replaces their ids in the
        disclosures log (Art 30(6): the entries stay, the ids do not).
        """
        from trace30.keys import trader_hash  # the pseudonym the tombstone carries

        by_tenant = _by_tenant(traders)
        outcome = PurgeOutcome()
        h = legal_holds_table
        with self._write(rollback=dry_run) as conn:
            for tenant, ids in by_tenant.items():
                # A legal hold placed since the purge listed the trader wins: checked again
                # in the deleting transaction, the trader is left whole.
                held = set(conn.execute(sa.select(h.c.trader_id).where(
                    h.c.tenant_id == tenant, _among(conn, h.c.trader_id, ids),
                    h.c.released_at.is_(None))).scalars())
                outcome.held += [(tenant, i) for i in ids if i in held]
                ids = [i for i in ids if i not in held]
                if not ids:
                    continue
                chain.tombstones(conn, tenant=tenant, signer=signer, traders=[
                    (trader_id, trader_hash(trader_id, tenant)) for trader_id in ids])
                counts = self._delete_traders(conn, tenant, ids)
                for trader_id in ids:
                    outcome.counts[(tenant, trader_id)] = {
                        name: per_trader.get(trader_id, 0) for name, per_trader in counts.items()}
                if pseudonym is not None:
                    self._forget_in_disclosures(conn, tenant, ids, outcome, pseudonym)
        if not dry_run:
            for counts_of in outcome.counts.values():
                log.info("trader purged from the evidence log", extra={"rows": counts_of})
        return outcome

    def _delete_traders(self, conn: sa.Connection, tenant: str,
                        ids: list[str]) -> dict[str, Counter[str]]:
        """Delete the tenant's traders' rows, table by table (each table once for them all);
        the rows deleted per table and trader, in :meth:`purge_trader`'s order."""
        d, a = webhook_deliveries_table, webhook_attempts_table
        s, t = staff_actions_table, verifications_table
        docs, blobs = documents_table, document_blobs_table

        def delete(table: sa.Table) -> Counter[str]:
            return Counter(conn.execute(
                sa.delete(table)
                .where(table.c.tenant_id == tenant, _among(conn, table.c.trader_id, ids))
                .returning(table.c.trader_id)).scalars())

        delivery_of = dict(conn.execute(sa.select(d.c.id, d.c.trader_id).where(
            d.c.tenant_id == tenant, _among(conn, d.c.trader_id, ids))).all())
        blob_of = dict(conn.execute(sa.select(docs.c.storage_key, docs.c.trader_id).where(
            docs.c.tenant_id == tenant, _among(conn, docs.c.trader_id, ids),
            docs.c.storage == "database")).all())
        attempts: Counter[str] = Counter()
        if delivery_of:
            attempts.update(delivery_of[i] for i in conn.execute(
                sa.delete(a).where(_among(conn, a.c.delivery_id, list(delivery_of)))
                .returning(a.c.delivery_id)).scalars())
        counts: dict[str, Counter[str]] = {
            "webhook_attempts": attempts,
            "webhook_deliveries": delete(d),
            "staff_actions": delete(s),
            **{table.name: delete(table)
               for table in (complaints_table, statements_table, reviews_table)},
        }
        blob_counts: Counter[str] = Counter()
        if blob_of:
            blob_counts.update(blob_of[k] for k in conn.execute(
                sa.delete(blobs).where(_among(conn, blobs.c.storage_key, list(blob_of)))
                .returning(blobs.c.storage_key)).scalars())
        counts["document_blobs"] = blob_counts
        counts["documents"] = delete(docs)
        counts["traders"] = delete(traders_table)  # first: it refers to a verification
        counts["verifications"] = delete(t)
        return counts

    def _forget_in_disclosures(self, conn: sa.Connection, tenant: str, ids: list[str],
                               outcome: PurgeOutcome,
                               pseudonym: Callable[[str, str], str]) -> None:
        """The purge's part of the disclosures log, in its transaction: the traders' released
        holds deleted, their ids in the tenant's disclosures replaced (one pass over them)."""
        h, dl = legal_holds_table, disclosures_table
        outcome.holds_deleted += conn.execute(sa.delete(h).where(
            h.c.tenant_id == tenant, _among(conn, h.c.trader_id, ids),
            h.c.released_at.is_not(None))).rowcount
        wanted = set(ids)
        rows = conn.execute(self._for_update(
            sa.select(dl.c.id, dl.c.trader_ids).where(dl.c.tenant_id == tenant))).all()
        for disclosure_id, named in rows:
            hit = wanted.intersection(named or [])
            if not hit:
                continue
            new = [pseudonym(tenant, i) if i in hit else i for i in named]
            conn.execute(sa.update(dl).where(dl.c.id == disclosure_id).values(trader_ids=new))
            for trader_id in hit:
                key = (tenant, trader_id)
                outcome.disclosures[key] = outcome.disclosures.get(key, 0) + 1

    def verification_keys(self, traders: Sequence[tuple[str, str]]
                          ) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
        """Per ``(tenant, trader id)``: its verifications' ids and distinct fingerprints (the
        retention purge's Redis keys are named by them), one query per tenant."""
        t = verifications_table
        found: dict[tuple[str, str], tuple[list[str], list[str]]] = {
            pair: ([], []) for pair in traders}
        with self._read() as conn:
            for tenant, ids in _by_tenant(traders).items():
                for trader_id, vid, fingerprint in conn.execute(
                        sa.select(t.c.trader_id, t.c.id, t.c.fingerprint).where(
                            t.c.tenant_id == tenant, _among(conn, t.c.trader_id, ids))):
                    ids_of, fingerprints = found[(tenant, trader_id)]
                    ids_of.append(vid)
                    if fingerprint not in fingerprints:
                        fingerprints.append(fingerprint)
        return found

    def documents_outside(self, traders: Sequence[tuple[str, str]]
                          ) -> dict[tuple[str, str], list[tuple[str, str]]]:
        """Per ``(tenant, trader id)``: ``(storage, storage_key)`` of its documents kept
        outside the database (:meth:`document_files` for many traders, one query per tenant)."""
        d = documents_table
        found: dict[tuple[str, str], list[tuple[str, str]]] = {pair: [] for pair in traders}
        with self._read() as conn:
            for tenant, ids in _by_tenant(traders).items():
                for trader_id, storage, key in conn.execute(
                        sa.select(d.c.trader_id, d.c.storage, d.c.storage_key).where(
                            d.c.tenant_id == tenant, _among(conn, d.c.trader_id, ids),
                            d.c.storage != "database")):
                    found[(tenant, trader_id)].append((storage, key))
        return found

    def traders(
        self,
        *,
        tenant: str,
        verdict: str | None = None,
        checked_before: datetime | None = None,
        limit: int | None = None,
        include_ended: bool = False,
    ) -> list[str]:
        """Traders of ``tenant`` to re-verify, least recently checked first.

        ``verdict`` filters on the current verdict; ``checked_before`` keeps traders whose
        current verification was checked before it (or never: ``checked_at`` unset). Traders
        whose relationship ended are left out unless ``include_ended``.
        """
        t, tt = verifications_table, traders_table
        query = sa.select(tt.c.trader_id).join(
            t, tt.c.current_verification_id == t.c.id, isouter=True
        ).where(tt.c.tenant_id == tenant)
        if verdict is not None:
            query = query.where(tt.c.current_verdict == verdict)
        if checked_before is not None:
            query = query.where(sa.or_(t.c.checked_at.is_(None), t.c.checked_at < checked_before))
        if not include_ended:
            query = query.where(tt.c.ended_at.is_(None))
        query = query.order_by(t.c.checked_at.asc().nulls_first(), tt.c.trader_id)
        if limit is not None:
            query = query.limit(limit)
        with self._read() as conn:
            return list(conn.execute(query).scalars())

    def trader_summaries(
        self,
        *,
        tenant: str,
        verdict: str | None = None,
        trader_id: str | None = None,
        after: SummaryKey | None = None,
        limit: int = 50,
    ) -> list[TraderSummary]:
        """Traders of ``tenant`` with their current verification, most recently checked first
        (staff view), ``limit`` of them after the one whose :meth:`TraderSummary.key` is
        ``after`` (keyset paging: each page is read from its first row, however deep).

        ``verdict`` filters on the current verdict, ``trader_id`` picks one trader (exact).
        Traders whose relationship ended are included (``ended_at`` says so); traders whose
        current verification was never checked, or without a settled verification
        (``current`` None), come last, by trader id.
        """
        rows: list[sa.RowMapping] = []
        with self._read() as conn:
            if after is None or after.checked_at is not None:
                # the page's ids from the index first, then those rows only
                ids = list(conn.execute(self._checked_page(tenant, verdict, trader_id, after,
                                                           limit)).scalars())
                t, tt = verifications_table, traders_table
                found = {r["id"]: r for r in conn.execute(
                    self._summary_columns().select_from(t)
                    .join(tt, tt.c.current_verification_id == t.c.id)
                    .where(t.c.id.in_(ids))).mappings()} if ids else {}
                rows += [found[i] for i in ids if i in found]
            if len(rows) < limit:
                last = after.trader_id if after is not None and after.checked_at is None else None
                rows += conn.execute(self._unchecked_page(tenant, verdict, trader_id, last,
                                                          limit - len(rows))).mappings().all()
        return [
            TraderSummary(
                trader_id=r["summary_trader_id"],
                verdict=r["summary_verdict"],
                ended_at=r["summary_ended_at"],
                current=_record_from_row(r) if r["id"] is not None else None,
            )
            for r in rows
        ]

    def _checked_page(self, tenant: str, verdict: str | None, trader_id: str | None,
                      after: SummaryKey | None, limit: int) -> sa.Select[Any]:
        """The traders whose current verification was checked, newest check first (ties by
        trader id): walked in the verifications' ``(tenant_id, checked_at, trader_id, id)`` index
        from ``after``."""
        t, tt = verifications_table, traders_table
        query = (
            sa.select(t.c.id)
            .join(tt, sa.and_(tt.c.current_verification_id == t.c.id,
                              tt.c.tenant_id == t.c.tenant_id))
            .where(t.c.tenant_id == tenant, t.c.checked_at.is_not(None),
                   *self._summary_filter(tenant, verdict, trader_id))
            # on PostgreSQL the index walked backwards, ties put in trader id order by an
            # incremental sort (a few rows at a time)
            .order_by(t.c.checked_at.desc(), t.c.trader_id)
            .limit(limit)
        )
        if trader_id is not None:
            query = query.where(t.c.trader_id == trader_id)
        if after is not None and after.checked_at is not None:
            at = sa.literal(after.checked_at, UtcDateTime)
            query = query.where(t.c.checked_at <= at, sa.or_(
                t.c.checked_at < at, t.c.trader_id > after.trader_id))
        return query

    def _unchecked_page(self, tenant: str, verdict: str | None, trader_id: str | None,
                        after_trader: str | None, limit: int) -> sa.Select[Any]:
        """The traders without a checked current verification, by trader id."""
        t, tt = verifications_table, traders_table
        query = (
            self._summary_columns()
            .select_from(tt)
            .join(t, tt.c.current_verification_id == t.c.id, isouter=True)
            .where(sa.or_(tt.c.current_verification_id.is_(None), t.c.checked_at.is_(None)),
                   *self._summary_filter(tenant, verdict, trader_id))
            .order_by(tt.c.trader_id)
            .limit(limit)
        )
        if after_trader is not None:
            query = query.where(tt.c.trader_id > after_trader)
        return query

    @staticmethod
    def _summary_columns() -> sa.Select[Any]:
        t, tt = verifications_table, traders_table
        return sa.select(tt.c.trader_id.label("summary_trader_id"),
                         tt.c.current_verdict.label("summary_verdict"),
                         tt.c.ended_at.label("summary_ended_at"), *t.c)

    def trader_page(self, *, tenant: str, limit: int, after: tuple[datetime, str] | None = None,
                    verdict: str | None = None, state: str | None = None,
                    country: str | None = None, needs_review: bool | None = None,
                    updated_since: datetime | None = None,
                    updated_until: datetime | None = None) -> list[dict[str, Any]]:
        """``GET /v1/traders``: the tenant's traders in ``(updated_at, trader_id)`` order,
        ``limit`` of them after ``after`` (keyset: the ``(updated_at, trader_id)`` of the
        previous page's last one), filtered by current verdict, Art 30(3) state, country,
        whether a person must review them (``needs_review``) and when they last changed
        (``updated_since`` included, ``updated_until`` excluded)."""
        tt = traders_table
        query = sa.select(
            tt.c.trader_id, tt.c.current_verdict, tt.c.state, tt.c.country,
            tt.c.current_verification_id, tt.c.updated_at, tt.c.ended_at,
            tt.c.correction_due_at,
        ).where(tt.c.tenant_id == tenant)
        if verdict is not None:
            query = query.where(tt.c.current_verdict == verdict)
        if needs_review is not None:
            review = tt.c.current_verdict == Verdict.NEEDS_REVIEW.value
            query = query.where(review if needs_review else sa.or_(
                tt.c.current_verdict.is_(None), sa.not_(review)))
        if state is not None:
            query = query.where(tt.c.state == state)
        if country is not None:
            query = query.where(tt.c.country == country)
        if updated_since is not None:
            query = query.where(tt.c.updated_at >= updated_since)
        if updated_until is not None:
            query = query.where(tt.c.updated_at < updated_until)
        if after is not None:
            query = query.where(sa.tuple_(tt.c.updated_at, tt.c.trader_id)
                                > sa.tuple_(sa.literal(after[0], UtcDateTime),
                                            sa.literal(after[1])))
        query = query.order_by(tt.c.updated_at, tt.c.trader_id).limit(limit)
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def count_traders(self, *, tenant: str, verdict: str | None = None,
                      trader_id: str | None = None) -> int:
        """How many traders :meth:`trader_summaries` lists with the same filters."""
        tt = traders_table
        query = sa.select(sa.func.count()).select_from(tt).where(
            *self._summary_filter(tenant, verdict, trader_id)
        )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def verdict_counts(self, *, tenant: str) -> dict[str, int]:
        """The tenant's traders per current verdict (every verdict present, 0 when none),
        ended ones included."""
        tt = traders_table
        query = (
            sa.select(tt.c.current_verdict, sa.func.count())
            .where(tt.c.tenant_id == tenant, tt.c.current_verdict.is_not(None))
            .group_by(tt.c.current_verdict)
        )
        counts = dict.fromkeys(Verdict.values(), 0)
        with self._read() as conn:
            for verdict, n in conn.execute(query):
                counts[verdict] = int(n)
        return counts

    @staticmethod
    def _summary_filter(tenant: str, verdict: str | None, trader_id: str | None) -> list[Any]:
        tt = traders_table
        where = [tt.c.tenant_id == tenant]
        if verdict is not None:
            where.append(tt.c.current_verdict == verdict)
        if trader_id is not None:
            where.append(tt.c.trader_id == trader_id)
        return where
