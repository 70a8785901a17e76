"""The evidence log: each verification kept in SQL with what it was based on; the webhook outbox.

DSA Article 30 asks a marketplace to show, for every trader, what it checked and when. This
module keeps that record durably:

``verifications``
    one row per verification: the redacted submission (shown to staff), the full submission
    *sealed* (encrypted with :mod:`services.gateway.sealing`; the IBAN, e-mail and phone number
    are never stored in clear), each service's answer (``checks``), the evidence (VIES
    consultation number, register source URL and raw status), the verdict, its reasons and the
    timestamps; a ``pending`` verdict also carries when the gateway retries it.
``traders``
    one row per trader (``(tenant_id, trader_id)``): its current (latest settled) verification
    and verdict, and when the relationship ended (``ended_at``, set by
    ``POST /v1/traders/{id}/end``; the retention purge deletes everything about a trader six
    months after it).
``webhook_deliveries`` and ``webhook_attempts``
    the webhook outbox: a delivery is written in the same database as the verification it
    reports, leased by one sender at a time (:meth:`EvidenceLog.claim_due_webhooks`), and every
    attempt is recorded.

Every trader belongs to a **tenant** (a marketplace; migration 0005): ``verifications``,
``traders``, ``webhook_deliveries`` and ``staff_actions`` carry ``tenant_id`` (``default`` for
rows older than tenants), a trader is ``(tenant_id, trader_id)``, and every trader-level method
takes the tenant as a keyword-only ``tenant`` without a default, so that no caller forgets it.
Two marketplaces served by one deployment never see each other's traders, and linkage (a shared
payment account, VAT number or registration) never crosses from one to the other. Only a
verification id is global: :meth:`EvidenceLog.get` finds it in any tenant, and the caller
compares ``record.tenant_id`` with its own.

The store is SQLAlchemy Core over an embedded SQLite file by default, or PostgreSQL through
``TRACE30_DATABASE_URL`` (``postgresql+psycopg://user@host/db``; ``postgresql://`` is taken to
mean psycopg 3; a schema is chosen with ``?options=-csearch_path%3Dname``). The schema is made
by the Alembic migrations in ``migrations/`` (:meth:`EvidenceLog.migrate`), never by
``create_all``. Timestamps are timezone-aware UTC on the way in and out; a naive datetime is
refused, because it is a bug that would silently shift a deadline by the server's offset.

SQLite is made to behave like a server: foreign keys on, WAL journal (readers do not wait for
the writer), a 30 s busy timeout, and transactions that begin with ``BEGIN`` (write ones with
``BEGIN IMMEDIATE``, so that two processes never both read and then fail to upgrade to write).
An in-memory SQLite URL gives each thread its own database: use a file.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import sqlite3
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect

from services.gateway.sealing import Sealer, SealingError
from services.gateway.verdicts import Link
from shared.errors import ConfigError

log = logging.getLogger(__name__)

#: Where the Alembic environment and revisions live (shipped with the package).
MIGRATIONS_DIR = Path(__file__).with_name("migrations")

#: The PostgreSQL advisory lock that serialises :meth:`EvidenceLog.migrate` across processes.
MIGRATION_LOCK_KEY = zlib.crc32(b"trace30.gateway.evidence.migrate")

STATES = ("running", "settled")
VERDICTS = ("verified", "needs_review", "rejected", "pending")
DELIVERY_STATUSES = ("pending", "delivered", "failed")

#: Seconds to wait for a PostgreSQL connection before the request fails (and answers 503).
CONNECT_TIMEOUT_S = 5

# An execution option read by the SQLite "begin" hook below.
_SQLITE_BEGIN = "trace30_sqlite_begin"


class UtcDateTime(sa.TypeDecorator[datetime]):
    """A timestamp stored in UTC and always read back timezone-aware (UTC), on every backend.

    SQLite has no time zone type: the UTC wall time is stored, so stored values compare in
    order. PostgreSQL stores ``timestamptz``.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value!r}: the evidence log takes aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _json() -> sa.JSON:
    # None is stored as SQL NULL (not the JSON text 'null'), so IS NULL means "absent".
    return sa.JSON(none_as_null=True)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

verifications_table = sa.Table(
    "verifications",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("client_id", sa.String(255), nullable=False),
    sa.Column("fingerprint", sa.String(128), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("verdict", sa.String(16)),
    sa.Column("items", _json()),
    sa.Column("reasons", _json()),
    sa.Column("checks", _json()),
    sa.Column("name_consistency", _json()),
    sa.Column("evidence", _json()),
    sa.Column("submission", _json(), nullable=False),
    sa.Column("sealed_submission", sa.Text),
    sa.Column("account_fingerprint", sa.String(128)),
    sa.Column("request_id", sa.String(255)),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("settled_at", UtcDateTime),
    sa.Column("checked_at", UtcDateTime),
    sa.Column("expires_at", UtcDateTime),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_retry_at", UtcDateTime),
    # Identity keys (migration 0002): the normalised VAT number, "CC:kind:number" of the
    # registration; with account_fingerprint they link traders that share an identity.
    sa.Column("vat_key", sa.String(64)),
    sa.Column("registration_key", sa.String(160)),
    # The marketplace whose trader it is (migration 0005); the lookups below lead with it.
    sa.Column("tenant_id", sa.String(64), nullable=False, server_default="default"),
    # A caller was answered 202 and promised the verdict by webhook (migration 0006): the
    # transaction that settles the verification writes verification.completed.
    sa.Column("notify_requested", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Index(None, "tenant_id", "trader_id", "created_at"),
    sa.Index(None, "fingerprint"),
    sa.Index(None, "tenant_id", "account_fingerprint"),
    sa.Index(None, "tenant_id", "vat_key"),
    sa.Index(None, "tenant_id", "registration_key"),
    sa.Index(None, "verdict", "next_retry_at"),
    sa.Index(None, "state", "next_retry_at"),
)

traders_table = sa.Table(
    "traders",
    metadata,
    # A trader is (tenant, trader id): two marketplaces may use the same id (migration 0005).
    sa.Column("tenant_id", sa.String(64), nullable=False, server_default="default"),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("current_verification_id", sa.String(100), sa.ForeignKey("verifications.id")),
    sa.Column("current_verdict", sa.String(16)),
    # created_at of the current verification: a late re-save of an older one never replaces it
    sa.Column("current_created_at", UtcDateTime),
    sa.Column("updated_at", UtcDateTime, nullable=False),
    sa.Column("ended_at", UtcDateTime),
    # Art 30(3) (migration 0003): the trader must correct its data by this time, and when
    # the marketplace was sent trader.suspension_due because it had not.
    sa.Column("correction_due_at", UtcDateTime),
    sa.Column("suspension_due_sent_at", UtcDateTime),
    sa.PrimaryKeyConstraint("tenant_id", "trader_id"),
    sa.Index(None, "current_verification_id"),
    sa.Index(None, "tenant_id", "current_verdict"),
    sa.Index(None, "ended_at"),
    sa.Index(None, "correction_due_at"),
)

webhook_deliveries_table = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    sa.Column("client_id", sa.String(255), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    sa.Column("event", sa.String(64), nullable=False),
    sa.Column("payload", _json(), nullable=False),
    sa.Column("verification_id", sa.String(100), nullable=False),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempt_count", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("next_attempt_at", UtcDateTime),
    sa.Column("lease_until", UtcDateTime),
    sa.Column("delivered_at", UtcDateTime),
    sa.Column("tenant_id", sa.String(64), nullable=False, server_default="default"),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "verification_id"),
    sa.Index(None, "tenant_id", "trader_id"),
)

#: Staff actions on a trader (migration 0004): who re-verified it or recorded the end of the
#: relationship, when, and the verification it made; the audit trail a regulator may ask for.
staff_actions_table = sa.Table(
    "staff_actions",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),  # the client id (API key) that acted
    sa.Column("action", sa.String(32), nullable=False),  # reverify | end_relationship
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("verification_id", sa.String(100)),
    sa.Column("detail", _json()),
    sa.Column("tenant_id", sa.String(64), nullable=False, server_default="default"),
    sa.Index(None, "tenant_id", "trader_id", "at"),
)

#: Staff dashboard sessions (migration 0007): the cookie carries a random id, this table its
#: SHA-256; signing out revokes the session, so a copy of the cookie stops working.
ops_sessions_table = sa.Table(
    "ops_sessions",
    metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    sa.Column("client_id", sa.String(255), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("expires_at", UtcDateTime, nullable=False),
    sa.Column("revoked_at", UtcDateTime),
    sa.Index(None, "expires_at"),
)

webhook_attempts_table = sa.Table(
    "webhook_attempts",
    metadata,
    sa.Column(
        "delivery_id",
        sa.String(100),
        sa.ForeignKey("webhook_deliveries.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("number", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("status_code", sa.Integer),
    sa.Column("error", sa.Text),
    sa.Column("duration_ms", sa.Float, nullable=False),
)


@dataclass
class VerificationRecord:
    """One verification as the evidence log keeps it (personal data redacted in ``submission``)."""

    id: str
    trader_id: str
    client_id: str
    fingerprint: str
    state: str  # "running" | "settled"
    verdict: str | None  # verified | needs_review | rejected | pending; None while running
    items: dict | None
    reasons: list | None
    checks: dict | None
    name_consistency: dict | None
    evidence: dict | None  # {"vies_consultation_number", "register_source", ...}
    submission: dict  # the REDACTED submission, shown to staff
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


@dataclass
class WebhookDelivery:
    """One webhook to send, with every attempt made so far (oldest first).

    An attempt is ``{"number", "at", "status_code", "error", "duration_ms"}``.
    """

    id: str
    client_id: str
    url: str
    event: str
    payload: dict
    verification_id: str
    trader_id: str
    status: str  # pending | delivered | failed
    attempts: list[dict[str, Any]] = field(default_factory=list)
    created_at: datetime | None = None
    next_attempt_at: datetime | None = None
    delivered_at: datetime | None = None
    tenant_id: str = "default"


@dataclass
class TraderSummary:
    """A trader as the staff dashboard lists it: its current verdict and verification."""

    trader_id: str
    verdict: str | None  # the current verdict; None: no settled verification yet
    ended_at: datetime | None  # when the relationship ended; None: ongoing
    current: VerificationRecord | None


_RECORD_COLUMNS = (
    "id", "trader_id", "client_id", "fingerprint", "state", "verdict", "items", "reasons",
    "checks", "name_consistency", "evidence", "submission", "account_fingerprint", "request_id",
    "created_at", "settled_at", "checked_at", "expires_at", "attempts", "next_retry_at",
    "vat_key", "registration_key", "tenant_id",
)  # fmt: skip


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def build_engine(url: str) -> sa.Engine:
    """An engine for ``url`` (SQLite or PostgreSQL), configured as described above; no I/O.

    For a SQLite file the parent directory is created, so the relative default
    ``sqlite:///var/trace30-evidence.sqlite3`` works from a fresh checkout.
    """
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")  # psycopg 3 is what we ship
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        # A database that does not answer must fail a request, not hang it (503, Retry-After).
        return sa.create_engine(parsed, pool_pre_ping=True,
                                connect_args={"connect_timeout": CONNECT_TIMEOUT_S})
    if backend != "sqlite":
        raise ConfigError(
            f"TRACE30_DATABASE_URL: {backend!r} is not supported; use sqlite:///path or "
            "postgresql+psycopg://user@host/db"
        )
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith(
        "file:"
    ):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(parsed, pool_pre_ping=True, connect_args={"timeout": 30})
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # sqlite3's own transaction handling does not BEGIN before DDL or SELECT; we emit BEGIN
    # ourselves (SQLAlchemy's documented recipe), so migrations and reads are transactional.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    # WAL is a property of the file: only the first connection switches it on. Switching can
    # answer "database is locked" at once, without waiting for the busy timeout, while another
    # process holds a lock, so it is tried again for a while.
    for attempt in range(100):
        try:
            if cursor.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            break
        except sqlite3.OperationalError:
            if attempt == 99:
                raise
            time.sleep(0.05)
    cursor.close()


def _sqlite_begin(conn: sa.Connection) -> None:
    mode = conn.get_execution_options().get(_SQLITE_BEGIN, "")
    conn.exec_driver_sql(f"BEGIN {mode}".strip())


def _trader(tenant: str, trader_id: str) -> tuple[Any, Any]:
    """The WHERE conditions that pick one trader's row: its tenant and its id."""
    tt = traders_table
    return tt.c.tenant_id == tenant, tt.c.trader_id == trader_id


def _record_from_row(row: sa.RowMapping) -> VerificationRecord:
    values = {name: row[name] for name in _RECORD_COLUMNS}
    values["submission"] = values["submission"] or {}
    return VerificationRecord(**values)


class EndBeforeFirstVerification(ValueError):
    """An end of relationship dated before the trader's first verification."""

    def __init__(self, first: datetime) -> None:
        super().__init__(f"the trader's first verification was made at {first.isoformat()}")
        self.first = first


class Transaction:
    """Writes that stand or fall together, on one connection in one transaction.

    Settling a verification, the trader's correction it opens or closes, and the webhooks that
    report it are written by one :class:`Transaction` (``with log.transaction() as tx``): a crash
    or a database fault leaves either all of them or none, never a verdict without its webhook.
    """

    def __init__(self, log: EvidenceLog, conn: sa.Connection) -> None:
        self.log = log
        self.conn = conn

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
        t = verifications_table
        current = self.conn.execute(
            self.log._for_update(sa.select(t.c.state, t.c.verdict, t.c.attempts,
                                           t.c.notify_requested).where(t.c.id == record.id))
        ).first()
        if (current is None or current.attempts != expected_attempts
                or not (current.state == "running" or current.verdict == "pending")):
            return None
        values = {name: getattr(record, name) for name in _RECORD_COLUMNS
                  if name not in ("id", "created_at")}
        self.conn.execute(sa.update(t).where(t.c.id == record.id)
                          .values(**values, notify_requested=False))
        self.log._point_trader_at(self.conn, record)
        return bool(current.notify_requested)

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

    def enqueue_webhook(self, *, client_id: str, url: str, event: str, payload: dict,
                        verification_id: str, trader_id: str, tenant: str) -> str:
        """Put a webhook in the outbox; the sender delivers it once this transaction commits.
        Returns the delivery id."""
        delivery_id = "whd_" + uuid.uuid4().hex
        now = _utcnow()
        self.conn.execute(sa.insert(webhook_deliveries_table).values(
            id=delivery_id, client_id=client_id, url=url, event=event, payload=payload,
            verification_id=verification_id, trader_id=trader_id, tenant_id=tenant,
            status="pending",
            attempt_count=0, created_at=now, next_attempt_at=now))
        return delivery_id


class EvidenceLog:
    """The evidence log and webhook outbox on one database; safe to share between threads."""

    def __init__(self, url: str, sealing_keys: str) -> None:
        """Build the engine (connections are opened lazily) and the sealer; no I/O."""
        self.engine = build_engine(url)
        self.dialect = self.engine.dialect.name
        self._sealer = Sealer(sealing_keys)

    def __repr__(self) -> str:
        return f"EvidenceLog({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Close every pooled connection (at shutdown, or in a child after a fork)."""
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer (for ``/readyz``)."""
        with self._read() as conn:
            conn.execute(sa.select(1))

    # -- plumbing ---------------------------------------------------------------------------

    @contextmanager
    def _write(self) -> Iterator[sa.Connection]:
        """A connection in a write transaction, committed on success."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():
                yield conn

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A connection for reads (its transaction is rolled back at the end)."""
        with self.engine.connect() as conn:
            yield conn

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A :class:`Transaction`: what it writes is committed together, or not at all."""
        with self._write() as conn:
            yield Transaction(self, conn)

    def _for_update(self, query: sa.Select) -> sa.Select:
        """``query`` locking its rows on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
        return query.with_for_update() if self.dialect == "postgresql" else query

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for the backend in use."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def alembic_config(self, connection: sa.Connection | None = None) -> Config:
        """The Alembic configuration of the evidence log (built in code; no alembic.ini)."""
        config = Config()
        config.set_main_option("script_location", str(MIGRATIONS_DIR))
        config.set_main_option("path_separator", "os")
        if connection is not None:
            config.attributes["connection"] = connection
        else:  # env.py connects by itself; '%' is escaped for the config parser
            url = self.engine.url.render_as_string(hide_password=False)
            config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
        return config

    def migrate(self) -> None:
        """Bring the schema to the newest revision (``alembic upgrade head``).

        Safe to run from several processes at once: on PostgreSQL a transaction-scoped
        advisory lock serialises them and DDL is transactional; on SQLite ``BEGIN IMMEDIATE``
        does the same. The ones that wait find the schema current and do nothing.
        """
        with self._write() as conn:
            if self.dialect == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(MIGRATION_LOCK_KEY)))
            command.upgrade(self.alembic_config(conn), "head")

    # -- verifications ----------------------------------------------------------------------

    def save(self, record: VerificationRecord, private_submission: dict | None = None) -> None:
        """Insert or update ``record`` (by id); seal ``private_submission`` if given.

        A later save without ``private_submission`` keeps the sealed one; ``created_at`` is
        the first save's. When the record is settled, the trader's row points at it unless
        the trader's current verification was created later (a late retry of an older
        verification does not replace a newer one). A verification created after the
        trader's relationship ended reopens the relationship (``ended_at`` is cleared).
        """
        if record.state not in STATES:
            raise ValueError(f"state must be one of {STATES}, got {record.state!r}")
        if record.verdict is not None and record.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {record.verdict!r}")
        t = verifications_table
        row = {name: getattr(record, name) for name in _RECORD_COLUMNS}
        row["sealed_submission"] = (
            self._sealer.seal(private_submission) if private_submission is not None else None
        )
        ins = self._insert(t).values(**row)
        update = {
            name: ins.excluded[name] for name in row if name not in ("id", "created_at")
        }
        update["sealed_submission"] = sa.func.coalesce(
            ins.excluded.sealed_submission, t.c.sealed_submission
        )
        with self._write() as conn:
            conn.execute(ins.on_conflict_do_update(index_elements=[t.c.id], set_=update))
            if record.state == "settled":
                self._point_trader_at(conn, record)

    def _point_trader_at(self, conn: sa.Connection, record: VerificationRecord) -> None:
        tt = traders_table
        # created_at as stored (the first save's), which decides which verification is newer
        created_at = conn.execute(
            sa.select(verifications_table.c.created_at).where(
                verifications_table.c.id == record.id
            )
        ).scalar_one()
        ins = self._insert(tt).values(
            tenant_id=record.tenant_id,
            trader_id=record.trader_id,
            current_verification_id=record.id,
            current_verdict=record.verdict,
            current_created_at=created_at,
            updated_at=_utcnow(),
            ended_at=None,
        )
        reopened = sa.and_(
            tt.c.ended_at.is_not(None), ins.excluded.current_created_at > tt.c.ended_at
        )
        conn.execute(
            ins.on_conflict_do_update(
                index_elements=[tt.c.tenant_id, tt.c.trader_id],
                set_={
                    "current_verification_id": ins.excluded.current_verification_id,
                    "current_verdict": ins.excluded.current_verdict,
                    "current_created_at": ins.excluded.current_created_at,
                    "updated_at": ins.excluded.updated_at,
                    "ended_at": sa.case((reopened, sa.null()), else_=tt.c.ended_at),
                },
                where=sa.or_(
                    tt.c.current_created_at.is_(None),
                    tt.c.current_created_at <= ins.excluded.current_created_at,
                ),
            )
        )

    # -- corrections (Art 30(3)) --------------------------------------------------------------

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
        """Traders still rejected after their correction time, not yet reported, relationship
        ongoing, in every tenant: ``(tenant, trader_id, current verification id, correction
        due time)``. Each is then claimed with :meth:`Transaction.claim_suspension`, in the
        transaction that writes its webhook."""
        tt = traders_table
        due = (sa.select(tt.c.tenant_id, tt.c.trader_id, tt.c.current_verification_id,
                         tt.c.correction_due_at)
               .where(tt.c.correction_due_at <= now)
               .where(tt.c.current_verdict == "rejected")
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

    def get(self, verification_id: str) -> VerificationRecord | None:
        """The verification ``verification_id`` in whichever tenant, or None: a caller acting
        for a tenant compares ``record.tenant_id`` with its own."""
        t = verifications_table
        with self._read() as conn:
            row = conn.execute(sa.select(t).where(t.c.id == verification_id)).mappings().first()
        return _record_from_row(row) if row else None

    def current(self, trader_id: str, *, tenant: str) -> VerificationRecord | None:
        """The trader's current verification (its latest settled one), or None."""
        t, tt = verifications_table, traders_table
        query = (
            sa.select(t)
            .join(tt, tt.c.current_verification_id == t.c.id)
            .where(*_trader(tenant, trader_id))
        )
        with self._read() as conn:
            row = conn.execute(query).mappings().first()
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
        t, tt = verifications_table, traders_table
        keys = {"account": (t.c.account_fingerprint, account_fingerprint),
                "vat": (t.c.vat_key, vat_key),
                "registration": (t.c.registration_key, registration_key)}
        given = {name: (column, value) for name, (column, value) in keys.items() if value}
        if not given:
            return []
        query = (
            sa.select(tt.c.trader_id, tt.c.current_verdict,
                      *(column for column, _ in given.values()))
            .join(t, tt.c.current_verification_id == t.c.id)
            .where(t.c.tenant_id == tenant, tt.c.tenant_id == tenant)
            .where(sa.or_(*(column == value for column, value in given.values())))
            .where(tt.c.trader_id != exclude_trader_id)
            .order_by(tt.c.trader_id)
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).all()
        return [
            Link(row[0], row[1], frozenset(
                name for (name, (_, value)), found in zip(given.items(), row[2:], strict=True)
                if found == value))
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
        t = verifications_table
        due = sa.and_(t.c.verdict == "pending", t.c.next_retry_at <= now)
        lease = {"next_retry_at": now + timedelta(seconds=lease_s)}
        return self._load_claimed(self._claim(t, due, t.c.next_retry_at, lease, limit))

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
        t = verifications_table
        stale = sa.and_(t.c.state == "running", sa.or_(
            t.c.next_retry_at <= now,
            sa.and_(t.c.next_retry_at.is_(None),
                    t.c.created_at <= now - timedelta(seconds=lease_s))))
        lease = {"next_retry_at": now + timedelta(seconds=lease_s)}
        return self._load_claimed(self._claim(t, stale, t.c.created_at, lease, limit))

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

    def _claim(
        self, table: sa.Table, due: Any, order: Any, lease: dict[str, Any], limit: int
    ) -> list[str]:
        """Lease up to ``limit`` rows matching ``due`` (setting ``lease``); their ids, in order.

        A read first: when nothing is due (most polls) no write transaction is opened, which on
        SQLite would briefly hold the database's write lock. Then, in one write transaction,
        the due rows are selected (on PostgreSQL locked with SKIP LOCKED, so concurrent
        claimers take different rows; on SQLite ``BEGIN IMMEDIATE`` already excludes other
        writers) and each is leased by an UPDATE that checks again that it is due.
        """
        with self._read() as conn:
            if conn.execute(sa.select(table.c.id).where(due).limit(1)).first() is None:
                return []
        query = sa.select(table.c.id).where(due).order_by(order, table.c.id).limit(limit)
        if self.dialect == "postgresql":
            query = query.with_for_update(skip_locked=True)
        with self._write() as conn:
            return [
                i for i in conn.execute(query).scalars().all()
                if conn.execute(
                    sa.update(table).where(table.c.id == i, due).values(**lease)
                ).rowcount == 1
            ]  # fmt: skip

    def private_submission(self, verification_id: str) -> dict | None:
        """The full submission of a verification, unsealed; None if none was kept.

        Raises :class:`~services.gateway.sealing.SealingError` if no configured key opens it.
        """
        t = verifications_table
        with self._read() as conn:
            token = conn.execute(
                sa.select(t.c.sealed_submission).where(t.c.id == verification_id)
            ).scalar()
        return self._sealer.unseal(token) if token else None

    # -- traders and retention ----------------------------------------------------------------

    def end_relationship(self, trader_id: str, ended_at: datetime,
                         actor: str | None = None, *, tenant: str) -> bool:
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
                self._insert_action(conn, tenant=tenant, actor=actor, action="end_relationship",
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

    # -- staff actions ------------------------------------------------------------------------

    def record_action(self, *, tenant: str, actor: str, action: str, trader_id: str,
                      verification_id: str | None = None, detail: dict | None = None) -> None:
        """Keep who did what to a trader, and when (the staff audit trail)."""
        with self._write() as conn:
            self._insert_action(conn, tenant=tenant, actor=actor, action=action,
                                trader_id=trader_id, verification_id=verification_id,
                                detail=detail)

    @staticmethod
    def _insert_action(conn: sa.Connection, *, tenant: str, actor: str, action: str,
                       trader_id: str, verification_id: str | None = None,
                       detail: dict | None = None) -> None:
        conn.execute(sa.insert(staff_actions_table).values(
            id=uuid.uuid4().hex, at=_utcnow(), actor=actor, action=action, tenant_id=tenant,
            trader_id=trader_id, verification_id=verification_id, detail=detail))

    def actions(self, trader_id: str, limit: int = 100, *, tenant: str) -> list[dict[str, Any]]:
        """The trader's staff actions, newest first."""
        s = staff_actions_table
        query = (sa.select(s.c.at, s.c.actor, s.c.action, s.c.verification_id, s.c.detail)
                 .where(s.c.tenant_id == tenant, s.c.trader_id == trader_id)
                 .order_by(s.c.at.desc()).limit(limit))
        with self._read() as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def purge_trader(self, trader_id: str, *, tenant: str) -> dict[str, int]:
        """Delete everything the log holds about a trader of ``tenant``, in one transaction
        (the same trader id in another tenant is another trader, and stays).

        Returns the rows deleted per table: ``webhook_attempts``, ``webhook_deliveries``,
        ``staff_actions``, ``traders``, ``verifications``.
        """
        d, a = webhook_deliveries_table, webhook_attempts_table
        s, t = staff_actions_table, verifications_table
        with self._write() as conn:
            deliveries = sa.select(d.c.id).where(d.c.tenant_id == tenant,
                                                 d.c.trader_id == trader_id)
            counts = {
                "webhook_attempts": conn.execute(
                    sa.delete(a).where(a.c.delivery_id.in_(deliveries))
                ).rowcount,
                "webhook_deliveries": conn.execute(
                    sa.delete(d).where(d.c.tenant_id == tenant, d.c.trader_id == trader_id)
                ).rowcount,
                "staff_actions": conn.execute(
                    sa.delete(s).where(s.c.tenant_id == tenant, s.c.trader_id == trader_id)
                ).rowcount,
                # the trader's row first: it refers to a verification
                "traders": conn.execute(
                    sa.delete(traders_table).where(*_trader(tenant, trader_id))
                ).rowcount,
                "verifications": conn.execute(
                    sa.delete(t).where(t.c.tenant_id == tenant, t.c.trader_id == trader_id)
                ).rowcount,
            }
        log.info("trader purged from the evidence log", extra={"rows": counts})
        return counts

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
        offset: int = 0,
        limit: int = 50,
    ) -> list[TraderSummary]:
        """Traders of ``tenant`` with their current verification, most recently checked first
        (staff view).

        ``verdict`` filters on the current verdict, ``trader_id`` picks one trader (exact).
        Traders whose relationship ended are included (``ended_at`` says so); a trader
        without a settled verification comes last, with ``current`` None.
        """
        t, tt = verifications_table, traders_table
        query = (
            sa.select(
                tt.c.trader_id.label("summary_trader_id"),
                tt.c.current_verdict.label("summary_verdict"),
                tt.c.ended_at.label("summary_ended_at"),
                *t.c,
            )
            .join(t, tt.c.current_verification_id == t.c.id, isouter=True)
            .where(*self._summary_filter(tenant, verdict, trader_id))
            .order_by(t.c.checked_at.desc().nulls_last(), tt.c.trader_id)
            .offset(offset)
            .limit(limit)
        )
        with self._read() as conn:
            rows = conn.execute(query).mappings().all()
        return [
            TraderSummary(
                trader_id=r["summary_trader_id"],
                verdict=r["summary_verdict"],
                ended_at=r["summary_ended_at"],
                current=_record_from_row(r) if r["id"] is not None else None,
            )
            for r in rows
        ]

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
        counts = dict.fromkeys(VERDICTS, 0)
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

    # -- dashboard sessions ---------------------------------------------------------------------

    def open_session(self, client_id: str, lifetime: timedelta) -> str:
        """Start a staff session for ``client_id``; return its id (for the signed cookie).

        Only the id's SHA-256 is stored. Sessions that expired are deleted on the way.
        """
        session_id = secrets.token_urlsafe(32)
        now = _utcnow()
        s = ops_sessions_table
        with self._write() as conn:
            conn.execute(sa.delete(s).where(s.c.expires_at < now))
            conn.execute(sa.insert(s).values(
                id_sha256=_sha256(session_id), client_id=client_id, created_at=now,
                expires_at=now + lifetime))
        return session_id

    def session_client(self, session_id: str) -> str | None:
        """The client of a live session (known, not expired, not revoked), or None."""
        s = ops_sessions_table
        query = sa.select(s.c.client_id).where(
            s.c.id_sha256 == _sha256(session_id), s.c.revoked_at.is_(None),
            s.c.expires_at > _utcnow())
        with self._read() as conn:
            return conn.execute(query).scalar_one_or_none()

    def revoke_session(self, session_id: str) -> None:
        """End a session (sign-out): its cookie, and every copy of it, stops working."""
        s = ops_sessions_table
        with self._write() as conn:
            conn.execute(sa.update(s).where(s.c.id_sha256 == _sha256(session_id))
                         .values(revoked_at=_utcnow()))

    # -- webhook outbox -----------------------------------------------------------------------

    def enqueue_webhook(self, *, client_id: str, url: str, event: str, payload: dict,
                        verification_id: str, trader_id: str, tenant: str) -> str:
        """Store a webhook to send as soon as a sender is free; returns the delivery id."""
        with self.transaction() as tx:
            return tx.enqueue_webhook(client_id=client_id, url=url, event=event, payload=payload,
                                      verification_id=verification_id, trader_id=trader_id,
                                      tenant=tenant)

    def claim_due_webhooks(
        self, now: datetime, limit: int, lease_s: float
    ) -> list[WebhookDelivery]:
        """Lease up to ``limit`` pending deliveries that are due, oldest due first.

        A leased delivery is not handed to anyone else until ``now + lease_s`` or until
        :meth:`record_attempt` settles it, so two senders never send the same one at once.
        """
        d = webhook_deliveries_table
        due = sa.and_(
            d.c.status == "pending",
            d.c.next_attempt_at <= now,
            sa.or_(d.c.lease_until.is_(None), d.c.lease_until < now),
        )
        lease = {"lease_until": now + timedelta(seconds=lease_s)}
        claimed = self._claim(d, due, d.c.next_attempt_at, lease, limit)
        if not claimed:
            return []
        with self._read() as conn:
            deliveries = {x.id: x for x in self._load_deliveries(conn, d.c.id.in_(claimed))}
        return [deliveries[i] for i in claimed if i in deliveries]

    def record_attempt(
        self,
        delivery_id: str,
        *,
        status_code: int | None,
        error: str | None,
        duration_ms: float,
        delivered: bool,
        next_attempt_at: datetime | None,
        at: datetime | None = None,
    ) -> None:
        """Record one attempt and settle the delivery: delivered, pending again, or failed.

        Not delivered with ``next_attempt_at`` None means the sender gave up (``failed``).
        ``at`` is when the attempt started (default: now). The lease is released. A delivery
        purged meanwhile is ignored.
        """
        d, a = webhook_deliveries_table, webhook_attempts_table
        now = _utcnow()
        if delivered:
            values: dict[str, Any] = {"status": "delivered", "delivered_at": now,
                                      "next_attempt_at": None}
        elif next_attempt_at is not None:
            values = {"status": "pending", "next_attempt_at": next_attempt_at}
        else:
            values = {"status": "failed", "next_attempt_at": None}
        with self._write() as conn:
            number = conn.execute(
                sa.update(d)
                .where(d.c.id == delivery_id)
                .values(attempt_count=d.c.attempt_count + 1, lease_until=None, **values)
                .returning(d.c.attempt_count)
            ).scalar()
            if number is None:
                log.warning("attempt of an unknown delivery", extra={"delivery_id": delivery_id})
                return
            conn.execute(
                sa.insert(a).values(
                    delivery_id=delivery_id,
                    number=number,
                    at=at or now,
                    status_code=status_code,
                    error=error,
                    duration_ms=duration_ms,
                )
            )

    def deliveries(self, verification_id: str) -> list[WebhookDelivery]:
        """The webhooks of a verification, oldest first, each with its attempts."""
        d = webhook_deliveries_table
        with self._read() as conn:
            return self._load_deliveries(conn, d.c.verification_id == verification_id)

    def _load_deliveries(self, conn: sa.Connection, where: Any) -> list[WebhookDelivery]:
        d, a = webhook_deliveries_table, webhook_attempts_table
        rows = conn.execute(sa.select(d).where(where).order_by(d.c.created_at, d.c.id)).mappings()
        deliveries = {
            r["id"]: WebhookDelivery(
                id=r["id"],
                client_id=r["client_id"],
                url=r["url"],
                event=r["event"],
                payload=r["payload"],
                verification_id=r["verification_id"],
                trader_id=r["trader_id"],
                status=r["status"],
                created_at=r["created_at"],
                next_attempt_at=r["next_attempt_at"],
                delivered_at=r["delivered_at"],
                tenant_id=r["tenant_id"],
            )
            for r in rows
        }
        if deliveries:
            attempts = conn.execute(
                sa.select(a)
                .where(a.c.delivery_id.in_(list(deliveries)))
                .order_by(a.c.delivery_id, a.c.number)
            ).mappings()
            for r in attempts:
                deliveries[r["delivery_id"]].attempts.append({
                    "number": r["number"],
                    "at": r["at"],
                    "status_code": r["status_code"],
                    "error": r["error"],
                    "duration_ms": r["duration_ms"],
                })
        return list(deliveries.values())
