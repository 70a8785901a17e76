"""Verifications in the evidence log: saving, settling (once), reading, linking, leasing.

One row per verification: the redacted submission (shown to staff), the full submission
*sealed* (encrypted with :mod:`services.gateway.sealing`; the IBAN, e-mail and phone number are
never stored in clear), each service's answer (``checks``), the evidence (VIES consultation
number, register source URL and raw status), the verdict, its reasons and the timestamps. A
``pending`` verdict carries in ``next_retry_at`` when it is tried again; a running verification
carries there the time by which it must have settled, after which the sweeper runs it again.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from services.gateway.answers import Checks
from services.gateway.evidence.db import Claim, Database, _utcnow, insert_for, log
from services.gateway.evidence.schema import (
    STATES,
    traders_table,
    verifications_table,
)
from services.gateway.reasons import Verdict
from services.gateway.sealing import SealingError
from services.gateway.verdicts import Link

if TYPE_CHECKING:
    from services.gateway.evidence import EvidenceLog

@dataclass
class VerificationRecord:
    """One verification as the evidence log keeps it (personal data redacted in ``submission``)."""

    id: str
    trader_id: str
    client_id: str
    fingerprint: str
    state: str  # "running" | "settled"
    verdict: str | None  # verified | needs_review | rejected | pending; None while running
    items: dict[str, str] | None
    reasons: list[dict[str, Any]] | None
    checks: Checks | None  # each service's answer (services.gateway.answers)
    name_consistency: dict[str, Any] | None
    evidence: dict[str, Any] | None  # {"vies_consultation_number", "register_source", ...}
    submission: dict[str, Any]  # the REDACTED submission, shown to staff
    account_fingerprint: str | None  # keyed HMAC of the IBAN, from the payment service
    request_id: str | None
    created_at: datetime
    settled_at: datetime | None
    checked_at: datetime | None
    expires_at: datetime | None
    attempts: int = 0
    next_retry_at: datetime | None = None
    vat_key: str | None = None  # the normalised VAT number checked
    registration_key: str | None = None  # "CC:kind:normalised number" of the registration
    tenant_id: str = "default"  # the marketplace whose trader it is
    #: ``automated`` (the checks decided) or ``manual`` (a reviewer's decision, ``review_id``,
    #: settling the automated verification ``settles_verification_id``; migration 0008)
    source: str = "automated"
    settles_verification_id: str | None = None
    review_id: str | None = None


_RECORD_COLUMNS = (
    "id", "trader_id", "client_id", "fingerprint", "state", "verdict", "items", "reasons",
    "checks", "name_consistency", "evidence", "submission", "account_fingerprint", "request_id",
    "created_at", "settled_at", "checked_at", "expires_at", "attempts", "next_retry_at",
    "vat_key", "registration_key", "tenant_id", "source", "settles_verification_id",
    "review_id",
)  # fmt: skip



def _record_from_row(row: sa.RowMapping) -> VerificationRecord:
    values = {name: row[name] for name in _RECORD_COLUMNS}
    values["submission"] = values["submission"] or {}
    return VerificationRecord(**values)



class SettleInTransaction:
    """The part of a :class:`~services.gateway.evidence.Transaction` that settles."""

    log: EvidenceLog
    conn: sa.Connection

    def settle(self, record: VerificationRecord, *, expected_attempts: int) -> bool | None:
        """Write ``record`` (settled) over the run that ``expected_attempts`` says it continues.

        The row must still be that run's: running, or a ``pending`` verdict being retried,
        with ``attempts == expected_attempts``. Two runs of one verification (its process and
        the sweeper that recovered it, or two retries past a lease) race here and exactly one
        wins. Returns whether a caller was promised the verdict by webhook (and clears that
        promise, so it is kept once), or None when another run settled it first (nothing is
        written).
        """
        if record.state != "settled":
            raise ValueError("settle() takes a settled record")
        query = _SETTLING_LOCKED if self.log.dialect == "postgresql" else _SETTLING
        current = self.conn.execute(query, {"verification_id": record.id}).first()
        if (current is None or current.attempts != expected_attempts
                or not (current.state == "running" or current.verdict == "pending")):
            return None
        values = {name: getattr(record, name) for name in _RECORD_COLUMNS
                  if name not in ("id", "created_at")}
        self.conn.execute(_SETTLE, {**values, "notify_requested": False,
                                    "settled_id": record.id})
        self.log._point_trader_at(self.conn, record)
        return bool(current.notify_requested)


@functools.cache
def _linked_traders(given: tuple[str, ...]) -> sa.Select[Any]:
    """The tenant's other traders whose current verification shares one of the identifiers
    ``given`` (``account``, ``vat``, ``registration``: parameters of those names, with
    ``tenant``, ``exclude`` and ``limit``); built once per combination."""
    t, tt = verifications_table, traders_table
    columns = {"account": t.c.account_fingerprint, "vat": t.c.vat_key,
               "registration": t.c.registration_key}
    return (
        sa.select(tt.c.trader_id, tt.c.current_verdict, *(columns[name] for name in given))
        .join(t, tt.c.current_verification_id == t.c.id)
        .where(t.c.tenant_id == sa.bindparam("tenant"), tt.c.tenant_id == sa.bindparam("tenant"))
        .where(sa.or_(*(columns[name] == sa.bindparam(name) for name in given)))
        .where(tt.c.trader_id != sa.bindparam("exclude"))
        .order_by(tt.c.trader_id)
        .limit(sa.bindparam("limit", type_=sa.Integer))
    )


#: What a run settling a verification checks first (parameter ``verification_id``); locked
#: until the transaction ends on PostgreSQL (SQLite's BEGIN IMMEDIATE already excludes writers).
_SETTLING = sa.select(
    verifications_table.c.state, verifications_table.c.verdict, verifications_table.c.attempts,
    verifications_table.c.notify_requested,
).where(verifications_table.c.id == sa.bindparam("verification_id"))
_SETTLING_LOCKED = _SETTLING.with_for_update()

#: The trader's current verification (parameters ``tenant``, ``trader_id``).
_CURRENT = (sa.select(verifications_table)
            .join(traders_table,
                  traders_table.c.current_verification_id == verifications_table.c.id)
            .where(traders_table.c.tenant_id == sa.bindparam("tenant"),
                   traders_table.c.trader_id == sa.bindparam("trader_id")))

#: Write a settled run over its row (the columns given as parameters, ``settled_id`` its id).
_SETTLE = sa.update(verifications_table).where(
    verifications_table.c.id == sa.bindparam("settled_id"))


@functools.cache
def _upsert_verification(dialect: str) -> Any:
    """Insert or update a verification by id (executed with the row as parameters): built
    once, since building an upsert (its ``excluded`` alias of every column) cost more CPU than
    sending it. ``created_at`` stays the first save's; a save without a sealed submission keeps
    the sealed one."""
    t = verifications_table
    ins = insert_for(dialect, t)
    update: dict[str, Any] = {name: ins.excluded[name] for name in _RECORD_COLUMNS
                              if name not in ("id", "created_at")}
    update["sealed_submission"] = sa.func.coalesce(ins.excluded.sealed_submission,
                                                   t.c.sealed_submission)
    return ins.on_conflict_do_update(index_elements=[t.c.id], set_=update)


@functools.cache
def _point_trader(dialect: str) -> Any:
    """Point the trader's row at a settled verification (parameters ``tenant_id``,
    ``trader_id``, ``verification_id``, ``verdict``, ``now``, ``country``), unless its current
    one was created later (a late retry of an older verification does not replace a newer
    one); its ``created_at`` is read as stored (the first save's) in the same statement. A
    verification created after the relationship ended reopens it (``ended_at`` cleared)."""
    t, tt = verifications_table, traders_table
    created_at = (sa.select(t.c.created_at).where(t.c.id == sa.bindparam("verification_id"))
                  .scalar_subquery())
    ins = insert_for(dialect, tt).values(
        tenant_id=sa.bindparam("tenant_id"), trader_id=sa.bindparam("trader_id"),
        current_verification_id=sa.bindparam("verification_id"),
        current_verdict=sa.bindparam("verdict"), current_created_at=created_at,
        updated_at=sa.bindparam("now", type_=tt.c.updated_at.type), ended_at=None,
        country=sa.bindparam("country"))
    reopened = sa.and_(tt.c.ended_at.is_not(None),
                       ins.excluded.current_created_at > tt.c.ended_at)
    return ins.on_conflict_do_update(
        index_elements=[tt.c.tenant_id, tt.c.trader_id],
        set_={
            "current_verification_id": ins.excluded.current_verification_id,
            "current_verdict": ins.excluded.current_verdict,
            "current_created_at": ins.excluded.current_created_at,
            "country": ins.excluded.country,
            "updated_at": ins.excluded.updated_at,
            "ended_at": sa.case((reopened, sa.null()), else_=tt.c.ended_at),
        },
        where=sa.or_(tt.c.current_created_at.is_(None),
                     tt.c.current_created_at <= ins.excluded.current_created_at),
    )


def _due_retries() -> Claim:
    """Pending verdicts whose retry is due at ``now``."""
    t = verifications_table
    due = sa.and_(t.c.verdict == "pending",
                  t.c.next_retry_at <= sa.bindparam("now", type_=t.c.next_retry_at.type))
    return Claim(t, due, t.c.next_retry_at, "next_retry_at")


def _stale_running() -> Claim:
    """Running verifications past their recovery time at ``now`` (rows from before migration
    0005, without one: created before ``created_before``)."""
    t = verifications_table
    stale = sa.and_(t.c.state == "running", sa.or_(
        t.c.next_retry_at <= sa.bindparam("now", type_=t.c.next_retry_at.type),
        sa.and_(t.c.next_retry_at.is_(None),
                t.c.created_at <= sa.bindparam("created_before", type_=t.c.created_at.type))))
    return Claim(t, stale, t.c.created_at, "next_retry_at")


_DUE_RETRIES, _STALE_RUNNING = _due_retries(), _stale_running()


@dataclass(frozen=True)
class Backlog:
    """Rows waiting for a worker (metrics): how many, and when the first of them is due."""

    count: int
    first_due_at: datetime | None


class Verifications(Database):
    """Verifications: saved, read, linked, leased for a run."""

    def pending_backlog(self) -> Backlog:
        """The ``pending`` verifications the sweepers will retry (one scan of the
        ``(verdict, next_retry_at)`` index)."""
        t = verifications_table
        query = sa.select(sa.func.count(), sa.func.min(t.c.next_retry_at)).where(
            t.c.verdict == "pending")
        with self._read() as conn:
            count, first = conn.execute(query).one()
        return Backlog(int(count), first)

    def running_count(self) -> int:
        """Verifications running now (or abandoned, until a sweeper takes them over)."""
        t = verifications_table
        with self._read() as conn:
            return int(conn.execute(sa.select(sa.func.count()).where(
                t.c.state == "running")).scalar_one())

    def save(self, record: VerificationRecord,
             private_submission: dict[str, Any] | None = None) -> None:
        """Insert or update ``record`` (by id); seal ``private_submission`` if given.

        A later save without ``private_submission`` keeps the sealed one; ``created_at`` is
        the first save's. When the record is settled, the trader's row points at it unless
        the trader's current verification was created later (a late retry of an older
        verification does not replace a newer one). A verification created after the
        trader's relationship ended reopens the relationship (``ended_at`` is cleared).
        """
        if record.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {record.state!r}")
        if record.verdict is not None and record.verdict not in Verdict.values():
            raise ValueError(f"verdict must be one of {tuple(Verdict.values())}, "
                             f"got {record.verdict!r}")
        row = {name: getattr(record, name) for name in _RECORD_COLUMNS}
        row["sealed_submission"] = (
            self._sealer.seal(private_submission) if private_submission is not None else None
        )
        with self._write() as conn:
            conn.execute(_upsert_verification(self.dialect), row)
            if record.state == "settled":
                self._point_trader_at(conn, record)

    def _point_trader_at(self, conn: sa.Connection, record: VerificationRecord) -> None:
        conn.execute(_point_trader(self.dialect), {
            "tenant_id": record.tenant_id, "trader_id": record.trader_id,
            "verification_id": record.id, "verdict": record.verdict, "now": _utcnow(),
            "country": _country(record.submission)})  # GET /v1/traders?country=

    def get(self, verification_id: str) -> VerificationRecord | None:
        """The verification ``verification_id`` in whichever tenant, or None: a caller acting
        for a tenant compares ``record.tenant_id`` with its own."""
        t = verifications_table
        with self._read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == verification_id)).mappings().first()
        return _record_from_row(row) if row else None

    def current(self, trader_id: str, *, tenant: str) -> VerificationRecord | None:
        """The trader's current verification (its latest settled one), or None."""
        with self._read() as conn:
            row = conn.execute(_CURRENT, {"tenant": tenant, "trader_id": trader_id}
                               ).mappings().first()
        return _record_from_row(row) if row else None

    def history(self, trader_id: str, limit: int = 50, *,
                tenant: str) -> list[VerificationRecord]:
        """The trader's verifications, running ones included, newest first."""
        t = verifications_table
        query = (
            sa.select(t)
            .where(t.c.tenant_id == tenant, t.c.trader_id == trader_id)
            .order_by(t.c.created_at.desc(), t.c.id.desc())
            .limit(limit)
        )
        with self._read() as conn:
            return [_record_from_row(r) for r in conn.execute(query).mappings()]

    def linked_traders(
        self, exclude_trader_id: str, *, tenant: str, account_fingerprint: str | None = None,
        vat_key: str | None = None, registration_key: str | None = None, limit: int = 50,
    ) -> list[Link]:
        """Other traders of ``tenant`` whose current verification used the same payment
        account, VAT number or registration, with their current verdict and what links them.

        Only within the tenant: another marketplace's traders are not this one's to see, and
        its verdicts (a seller it rejected) are not evidence this one may use.
        """
        values = {"account": account_fingerprint, "vat": vat_key,
                  "registration": registration_key}
        given = tuple(name for name, value in values.items() if value)
        if not given:
            return []
        with self._read() as conn:
            rows = conn.execute(_linked_traders(given), {
                **{name: values[name] for name in given}, "tenant": tenant,
                "exclude": exclude_trader_id, "limit": limit}).all()
        return [
            Link(row[0], row[1], frozenset(
                name for name, found in zip(given, row[2:], strict=True)
                if found == values[name]))
            for row in rows
        ]

    def due_for_retry(self, now: datetime, limit: int = 100) -> list[VerificationRecord]:
        """Verifications with a ``pending`` verdict whose retry time has come, oldest due first.

        Nothing is leased: with several processes retrying, use :meth:`claim_due_retries`.
        """
        t = verifications_table
        query = (
            sa.select(t)
            .where(t.c.verdict == "pending", t.c.next_retry_at <= now)
            .order_by(t.c.next_retry_at, t.c.id)
            .limit(limit)
        )
        with self._read() as conn:
            return [_record_from_row(r) for r in conn.execute(query).mappings()]

    def claim_due_retries(
        self, now: datetime, limit: int, lease_s: float
    ) -> list[VerificationRecord]:
        """Like :meth:`due_for_retry`, but each one returned is leased to the caller.

        Its ``next_retry_at`` is moved to ``now + lease_s`` in the same transaction, so no
        other process gets it until the caller saves the outcome (or the lease runs out
        because the caller died). The records returned carry the new ``next_retry_at``.
        """
        return self._load_claimed(self._claim(_DUE_RETRIES, {"now": now},
                                              now + timedelta(seconds=lease_s), limit))

    def claim_stale_running(
        self, now: datetime, limit: int, lease_s: float
    ) -> list[VerificationRecord]:
        """Lease running verifications whose process gave up on them: past their recovery time.

        A running verification carries in ``next_retry_at`` the time by which it must have
        settled (its deadline and a margin): past it, the process that ran it has died, or lost
        the database while settling. Each one returned is leased like
        :meth:`claim_due_retries` (``next_retry_at`` moved to ``now + lease_s``), so exactly one
        sweeper runs it again; if the first run still settles meanwhile, :meth:`Transaction.settle`
        lets only one of them write. Rows from before migration 0005 carry no recovery time and
        count from their ``created_at``.
        """
        return self._load_claimed(self._claim(
            _STALE_RUNNING, {"now": now, "created_before": now - timedelta(seconds=lease_s)},
            now + timedelta(seconds=lease_s), limit))

    def request_notification(self, verification_id: str) -> bool:
        """A caller stops waiting for a running verification: promise it the verdict by webhook.

        True: the verification is still running, and whichever run settles it writes
        ``verification.completed`` in its settling transaction. False: it has settled (read it),
        or is unknown.
        """
        t = verifications_table
        with self._write() as conn:
            return conn.execute(
                sa.update(t).where(t.c.id == verification_id, t.c.state == "running")
                .values(notify_requested=True)
            ).rowcount == 1

    def _load_claimed(self, claimed: list[str]) -> list[VerificationRecord]:
        if not claimed:
            return []
        t = verifications_table
        with self._read() as conn:
            rows = conn.execute(sa.select(t).where(t.c.id.in_(claimed))).mappings()
            records = {r["id"]: _record_from_row(r) for r in rows}
        return [records[i] for i in claimed if i in records]

    def private_submission(self, verification_id: str) -> dict[str, Any] | None:
        """The full submission of a verification, unsealed; None if none was kept.

        Raises :class:`~services.gateway.sealing.SealingError` if no configured key opens it.
        """
        t = verifications_table
        with self._read() as conn:
            token = conn.execute(
                sa.select(t.c.sealed_submission).where(t.c.id == verification_id)
            ).scalar()
        return self._sealer.unseal(token) if token else None

    def seal_intact(self, verification_id: str) -> bool | None:
        """Whether the sealed submission of a verification opens and is unaltered.

        True: it opens with the configured keys (Fernet authenticates it, so it is as
        sealed); False: it does not (altered, or sealed with a key no longer configured);
        None: no sealed submission was kept. The unsealed document is discarded.
        """
        try:
            return True if self.private_submission(verification_id) is not None else None
        except SealingError:
            log.warning("sealed submission does not open: altered, or its key is gone",
                        extra={"verification": verification_id})
            return False


def _country(submission: dict[str, Any] | None) -> str | None:
    """The country of the submission's address (``traders.country``), upper case, or None.

    >>> _country({"address": {"country_code": "fr"}}), _country({})
    ('FR', None)
    """
    code = ((submission or {}).get("address") or {}).get("country_code")
    return code[:2].upper() if isinstance(code, str) and code else None
