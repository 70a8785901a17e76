"""The evidence log's database: the engine, transactions, leases and migrations.

The store is SQLAlchemy Core over an embedded SQLite file by default, or PostgreSQL through
``TRACE30_DATABASE_URL`` (``postgresql+psycopg://user@host/db``; ``postgresql://`` is taken to
mean psycopg 3; a schema is chosen with ``?options=-csearch_path%3Dname``). The schema is made
by the Alembic migrations in ``services/gateway/migrations/`` (:meth:`Database.migrate`), never
by ``create_all``.

SQLite is made to behave like a server: foreign keys on, WAL journal (readers do not wait for
the writer), a 30 s busy timeout, and transactions that begin with ``BEGIN`` (write ones with
``BEGIN IMMEDIATE``, so that two processes never both read and then fail to upgrade to write).
An in-memory SQLite URL gives each thread its own database: use a file.
"""

from __future__ import annotations

import logging
import sqlite3
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.dialects import postgresql, sqlite

from services.gateway.evidence import chain as _chain
from services.gateway.sealing import Sealer

if TYPE_CHECKING:
    from services.gateway.evidence import Transaction
from shared.errors import ConfigError

#: One logger for the whole evidence log (its name is what operators filter on).
log = logging.getLogger("services.gateway.evidence")

#: Where the Alembic environment and revisions live (shipped with the package).
MIGRATIONS_DIR = Path(__file__).parent.parent / "migrations"

#: The PostgreSQL advisory lock that serialises :meth:`EvidenceLog.migrate` across processes.
MIGRATION_LOCK_KEY = zlib.crc32(b"trace30.gateway.evidence.migrate")


#: Seconds to wait for a PostgreSQL connection before the request fails (and answers 503).
CONNECT_TIMEOUT_S = 5

#: A pooled PostgreSQL connection idle longer than this is pinged before it is handed out (a
#: server restart or an idle timeout may have closed it); one used more recently is not: the
#: ping was a round trip on every transaction. If one of those is dead after all, its request
#: fails once (503, Retry-After) and the pool replaces every connection opened before.
PING_AFTER_IDLE_S = 10.0


# An execution option read by the SQLite "begin" hook below.
_SQLITE_BEGIN = "trace30_sqlite_begin"



def insert_for(dialect: str, table: sa.Table) -> Any:
    """INSERT with ON CONFLICT support for ``dialect`` (``postgresql`` or ``sqlite``)."""
    return (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)


def _utcnow() -> datetime:
    return datetime.now(UTC)


class SchemaBehind(ConfigError):
    """The evidence log's schema is older than the code: run ``trace30 migrate`` first."""


@dataclass(frozen=True)
class SchemaState:
    """Where the evidence log's schema stands against the code's migrations.

    ``current`` is the database's Alembic revision (``None``: never migrated), ``head`` the
    newest revision the code ships. ``state`` is ``current`` (the two agree), ``behind`` (the
    database lacks migrations the code has: ``trace30 migrate``) or ``ahead`` (the database has
    a revision the code does not know: a newer release migrated it, then was rolled back).
    """

    current: str | None
    head: str
    state: str

    @property
    def behind(self) -> bool:
        return self.state == "behind"


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
        # LIFO: the connection just given back is the next handed out, so a quiet process keeps
        # using one warm connection (its prepared statements, no ping) and the others idle.
        engine = sa.create_engine(parsed, connect_args={"connect_timeout": CONNECT_TIMEOUT_S},
                                  pool_use_lifo=True)
        sa.event.listen(engine, "checkout", _ping_if_idle)
        sa.event.listen(engine, "checkin", _note_checkin)
        return engine
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


def _note_checkin(_dbapi_connection: Any, record: Any) -> None:
    record.info["trace30_idle_since"] = time.monotonic()


def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
    """SQLAlchemy's pessimistic disconnect handling, for connections idle a while only."""
    since = record.info.get("trace30_idle_since")
    if since is None or time.monotonic() - since < PING_AFTER_IDLE_S:
        return  # new, or used a moment ago
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
        dbapi_connection.rollback()
    except Exception as e:  # the connection is gone: the pool opens another
        raise sa.exc.DisconnectionError() from e


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



class Claim:
    """One kind of lease :meth:`Database._claim` takes: the rows of ``table`` that are ``due``
    (a condition on bound parameters, such as ``now``), oldest ``order`` first, leased by
    setting the column ``lease`` to the parameter ``lease_to``. Its statements are built once
    (the pollers run them every second in every gateway process)."""

    def __init__(self, table: sa.Table, due: Any, order: Any, lease: str) -> None:
        self.first = sa.select(table.c.id).where(due).limit(1)
        self.due_ids = (sa.select(table.c.id).where(due).order_by(order, table.c.id)
                        .limit(sa.bindparam("limit", type_=sa.Integer)))
        self.due_ids_locked = self.due_ids.with_for_update(skip_locked=True)
        self.lease = (sa.update(table).where(table.c.id == sa.bindparam("claimed_id"), due)
                      .values({lease: sa.bindparam("lease_to", type_=table.c[lease].type)}))


class Database:
    """The connection side of the evidence log, shared by its parts; safe between threads."""

    def __init__(self, url: str, sealing_keys: str, *, chain: bool = True) -> None:
        """Build the engine (connections are opened lazily) and the sealer; no I/O.

        ``chain``: append every write of a fact to the tamper-evident hash chain
        (:mod:`~services.gateway.evidence.chain`; ``TRACE30_EVIDENCE_CHAIN``). Off only for the
        bench's baseline: ``trace30 audit verify`` then names the rows written unchained.
        """
        self.engine = build_engine(url)
        self.dialect = self.engine.dialect.name
        # Reads on PostgreSQL run in autocommit: no BEGIN and ROLLBACK round trips around them.
        # At READ COMMITTED (PostgreSQL's default) every statement reads its own
        # snapshot inside a transaction too, and no read locks rows: the answers are the same.
        # SQLite keeps its read transaction (one snapshot of the WAL for the whole read).
        self._reader = (self.engine.execution_options(isolation_level="AUTOCOMMIT")
                        if self.dialect == "postgresql" else self.engine)
        self._sealer = Sealer(sealing_keys)
        self.chained = chain
        self._sequencer: _chain.Sequencer | None = None
        if chain and self.dialect == "postgresql":
            _chain.switch_on(self.engine)  # the triggers note this log's writes
            self._sequencer = _chain.Sequencer(self.engine)
        elif chain:
            _chain.install(self.engine)  # SQLite: the application notes them

    def __repr__(self) -> str:
        return f"EvidenceLog({self.engine.url.render_as_string(hide_password=True)!r})"

    def close(self) -> None:
        """Chain what waits, and close every pooled connection (at shutdown, or in a child
        after a fork)."""
        if self._sequencer is not None:
            self._sequencer.close()
        self.engine.dispose()

    def ping(self) -> None:
        """Raise if the database does not answer (for ``/readyz``)."""
        with self._read() as conn:
            conn.execute(sa.select(1))

    @contextmanager
    def _write(self, *, rollback: bool = False) -> Iterator[sa.Connection]:
        """A connection in a write transaction, committed on success (rolled back instead with
        ``rollback``: a dry run of the same writes)."""
        with self.engine.connect() as conn:
            if self.dialect == "sqlite":
                conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin() as transaction:
                if self.chained and not rollback:
                    _chain.track(conn)
                try:
                    yield conn
                    if rollback:
                        transaction.rollback()
                    elif self.chained:
                        # the chain entries of what was written, just before the commit
                        _chain.flush(conn, self.dialect)
                finally:
                    _chain.untrack(conn)
            if self._sequencer is not None and not rollback:
                self._sequencer.poke()  # chain what the triggers noted (not in this thread)

    def sequence_chain(self, *, durable: bool = False) -> int:
        """Chain every entry waiting in the inbox now, in this thread (the sweeper; ``trace30
        audit head`` with ``durable``, so the head it signs survives a crash); how many. The
        inbox is used on PostgreSQL only (SQLite appends in the writing transaction)."""
        if self.dialect != "postgresql":
            return 0
        with self.engine.connect() as conn:
            return _chain.sequence(conn, durable=durable)

    @contextmanager
    def _read(self) -> Iterator[sa.Connection]:
        """A connection for reads: on PostgreSQL in autocommit (each statement its own
        snapshot, as at READ COMMITTED in a transaction), on SQLite in a read transaction
        rolled back at the end. Nothing it runs may write or lock."""
        with self._reader.connect() as conn:
            yield conn

    #: The class of the transactions :meth:`transaction` opens; the front,
    #: :class:`~services.gateway.evidence.EvidenceLog`, names the one that has every part's
    #: writes.
    transaction_class: ClassVar[type[Any]]

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A :class:`~services.gateway.evidence.Transaction`: what it writes is committed
        together, or not at all."""
        with self._write() as conn:
            yield self.transaction_class(self, conn)

    def _for_update(self, query: sa.Select[Any]) -> sa.Select[Any]:
        """``query`` locking its rows on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
        return query.with_for_update() if self.dialect == "postgresql" else query

    def _insert(self, table: sa.Table) -> Any:
        """INSERT with ON CONFLICT support for the backend in use."""
        return insert_for(self.dialect, table)

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

    def schema_state(self) -> SchemaState:
        """The schema's revision against the code's newest one (reads one row; no DDL)."""
        script = ScriptDirectory.from_config(self.alembic_config())
        head = script.get_current_head()
        assert head is not None  # the package ships its migrations
        with self._read() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return SchemaState(current, head, "current")
        if current is None:
            return SchemaState(None, head, "behind")
        try:
            script.get_revision(current)
        except CommandError:  # not one of ours: written by a newer release
            return SchemaState(current, head, "ahead")
        return SchemaState(current, head, "behind")

    def prepare_schema(self, *, migrate: bool, component: str) -> SchemaState:
        """What a process does with the schema at start-up (``TRACE30_MIGRATE_ON_START``).

        ``migrate``: bring it up to date, as the sandbox does. Otherwise only check it: a schema
        older than the code raises :class:`SchemaBehind` (a :class:`ConfigError` telling the
        operator to run ``trace30 migrate``); a newer one (a release rolled back after its
        migration ran) is logged as a warning and the process starts: a release's migration is
        meant to keep the previous release working (expand now, contract a release later), and
        refusing would make a rollback impossible.
        """
        if migrate:
            self.migrate()
        state = self.schema_state()
        if state.behind:
            found = f"revision {state.current}" if state.current else "no schema at all"
            raise SchemaBehind(
                f"The evidence log's schema is older than this {component} "
                f"({found}; the code needs revision {state.head}). Run `trace30 migrate` "
                "(the release step; the Kubernetes Job trace30-migrate or the compose service "
                "`migrate`) before starting it, or set TRACE30_MIGRATE_ON_START=1 to migrate at "
                "start-up.")
        if state.state == "ahead":
            log.warning(
                "the evidence log's schema is newer than this %s (revision %s, unknown to the "
                "code, whose newest is %s): a newer release migrated it. Starting anyway.",
                component, state.current, state.head)
        return state

    def _claim(self, claim: Claim, params: dict[str, Any], lease_to: datetime,
               limit: int) -> list[str]:
        """Lease up to ``limit`` rows of ``claim`` due with ``params`` (setting its lease column
        to ``lease_to``); their ids, in order.

        A read first: when nothing is due (most polls) no write transaction is opened, which on
        SQLite would briefly hold the database's write lock. Then, in one write transaction,
        the due rows are selected (on PostgreSQL locked with SKIP LOCKED, so concurrent
        claimers take different rows; on SQLite ``BEGIN IMMEDIATE`` already excludes other
        writers) and each is leased by an UPDATE that checks again that it is due.
        """
        with self._read() as conn:
            if conn.execute(claim.first, params).first() is None:
                return []
        query = claim.due_ids_locked if self.dialect == "postgresql" else claim.due_ids
        with self._write() as conn:
            return [
                i for i in conn.execute(query, {**params, "limit": limit}).scalars().all()
                if conn.execute(claim.lease, {**params, "claimed_id": i, "lease_to": lease_to}
                                ).rowcount == 1
            ]  # fmt: skip
