"""The tamper-evident evidence log (issue 13 point 4): one SHA-256 hash chain per database.

Every write of a **fact** (a row of :data:`FACT_TABLES`: verifications, staff actions, reviews,
statements of reasons, complaints, document metadata, disclosures, legal holds) appends an entry
to ``evidence_chain`` for the row's new state:

- ``row_hash`` = SHA-256 of the row's fact columns (every column but :data:`BOOKKEEPING`: a
  verification's ``attempts`` and ``next_retry_at`` change on every retry and are not facts),
  as the database computes it: on SQLite, the canonical JSON (sorted keys, no spaces, UTF-8)
  made here (:func:`row_hash`); on PostgreSQL, the row's text in record syntax made by the
  server, the bookkeeping columns set to null (``trace30_chain_row_hash``, migration 0011, with
  the time zone and the output styles pinned);
- ``hash`` = SHA-256 of ``canonical({at, kind, table, key, row_hash, detail})`` (the entry's
  ``body``) followed by the previous entry's ``hash`` (``prev_hash``; 64 zeros before the first
  entry); ``seq`` counts up from 1 without a gap.

A legitimate UPDATE (a verification settled, a complaint decided) appends a new entry; the audit
compares each row's current content with its **latest** entry. A DELETE made by the application
appends an entry with ``row_hash`` null. The purge (Art 30(5)) appends one ``tombstone`` entry
instead, whose ``detail`` lists ``[table, key, row_hash]`` of every fact row it removed, the
trader's pseudonym (:func:`trace30.keys.trader_hash`), and an Ed25519 signature (the disclosure
signing key) over that list: the personal data is gone, and the chain still verifies.

How the writes are seen, by backend:

- **PostgreSQL**: a trigger on each fact table (``trace30_chain_note``, migration 0011) adds the
  entry to ``evidence_chain_inbox`` inside the writing statement: no extra round trip, no lock.
  It notes only the writes of connections that turned the chain on (``SET trace30.chain = on``,
  done by :func:`switch_on` when the evidence log connects); writes made by anyone else (plain
  SQL from another program) add nothing, and that is what :func:`verify` finds. The purge turns
  it to ``purge`` for its transaction: its DELETEs are covered by its tombstone. The
  **sequencer** (:func:`sequence`; a :class:`Sequencer` thread per process, woken after each
  write's commit; the gateway's sweeper and ``trace30 audit`` as back-stops) moves the inbox's
  entries into the chain in ``id`` order under the advisory lock :data:`CHAIN_LOCK_KEY`, in one
  statement per batch. Holding a lock across every writer's commit halved the submissions per
  second (``bench/chain.py``); an entry now waits in the inbox for milliseconds, already
  committed with its fact and hashed, and :func:`verify` counts it as the row's latest.
- **SQLite**: every write transaction is ``BEGIN IMMEDIATE``, so writers are already serialised
  and the entries are appended in the transaction itself. Engine ``before_execute`` /
  ``after_execute`` listeners note the primary keys of the fact rows that an INSERT, UPDATE or
  DELETE touches on a connection :func:`track` marked (``Database._write`` does); an UPDATE or
  DELETE whose WHERE does not name the id is first resolved by a SELECT of the ids in the same
  transaction; just before the commit :func:`flush` re-reads those rows and appends their
  entries. Writes made outside ``_write`` append nothing.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from services.gateway.evidence.schema import (
    complaints_table,
    disclosures_table,
    documents_table,
    evidence_chain_inbox_table,
    evidence_chain_table,
    legal_holds_table,
    reviews_table,
    staff_actions_table,
    statements_table,
    verifications_table,
)

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import (
        Ed25519PrivateKey,
        Ed25519PublicKey,
    )

#: The tables whose rows are facts, chained (all have a string primary key ``id``).
FACT_TABLES: dict[str, sa.Table] = {t.name: t for t in (
    verifications_table, staff_actions_table, reviews_table, statements_table,
    complaints_table, documents_table, disclosures_table, legal_holds_table)}

#: Columns that are bookkeeping, not facts: not hashed; an UPDATE of only these appends nothing.
BOOKKEEPING: dict[str, frozenset[str]] = {"verifications": frozenset({"attempts",
                                                                      "next_retry_at"})}

log = logging.getLogger("services.gateway.evidence.chain")

#: The PostgreSQL advisory lock that makes concurrent sequencers append to one chain.
CHAIN_LOCK_KEY = zlib.crc32(b"trace30.gateway.evidence.chain")

#: The ``prev_hash`` of the first entry.
GENESIS = "0" * 64

# Keys of ``Connection.info`` (the DBAPI connection's, so cleared by ``_write`` each time).
_DIRTY = "trace30_chain_dirty"
_TOMBSTONES = "trace30_chain_tombstones"


def canonical(document: Any) -> bytes:
    """Canonical JSON: sorted keys, no insignificant space, UTF-8 (as disclosure manifests)."""
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_plain).encode("utf-8")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat() if value.tzinfo else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def row_hash(table: sa.Table, row: sa.RowMapping | dict[str, Any]) -> str:
    """The SHA-256 of a fact row's fact columns (canonical JSON)."""
    skip = BOOKKEEPING.get(table.name, frozenset())
    facts = {c.name: row[c.name] for c in table.columns if c.name not in skip}
    return hashlib.sha256(canonical(facts)).hexdigest()


#: PostgreSQL: the server's hash of a fact row (migration 0011): SHA-256 of the row's record
#: text with the bookkeeping columns set to null, the time zone and output styles pinned.
def _row_hash_sql(table: sa.Table) -> sa.ColumnElement[str]:
    skip = sorted(BOOKKEEPING.get(table.name, ()))
    return sa.func.trace30_chain_row_hash(
        sa.literal_column(table.name), sa.cast(sa.literal(skip, sa.ARRAY(sa.Text)),
                                               sa.ARRAY(sa.Text)), type_=sa.String)


def row_hashes(conn: sa.Connection, table: sa.Table,
               *where: sa.ColumnElement[bool]) -> dict[str, str]:
    """``{id: row hash}`` of ``table``'s rows matching ``where``, as the chain hashes them on
    this connection's backend (see the module's docstring)."""
    if conn.dialect.name == "postgresql":
        query = sa.select(table.c.id, _row_hash_sql(table)).where(*where)
        return {str(key): digest for key, digest in conn.execute(query)}
    return {str(row["id"]): row_hash(table, row)
            for row in conn.execute(sa.select(table).where(*where)).mappings()}


#: What :func:`switch_on` sets on each connection: the chain's triggers on, and the settings
#: the server's row hash pins (``trace30_chain_row_hash``), so that the triggers hash the row's
#: text as it is (migration 0013; in a session with other values they call the pinned
#: function instead, which costs more).
_SWITCH_ON = ("SET trace30.chain = 'on'; SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; "
              "SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'; "
              "SET extra_float_digits = 1")


def switch_on(engine: sa.Engine) -> None:
    """PostgreSQL: every connection ``engine`` opens turns the chain's triggers on for itself
    (``SET trace30.chain = on``, and :data:`_SWITCH_ON`'s settings); the writes of other
    connections are not noted."""
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(_SWITCH_ON)
        cursor.close()
        dbapi_connection.commit()

    sa.event.listen(engine, "connect", _on_connect)


def entry_body(*, at: str, kind: str, table: str, key: str, row_hash: str | None,
               detail: Any) -> bytes:
    """What an entry's hash covers besides the previous hash (its place in the chain is bound
    by ``prev_hash``; ``seq`` must count up from 1 without a gap, checked apart)."""
    return canonical({"at": at, "kind": kind, "table": table, "key": key,
                      "row_hash": row_hash, "detail": detail})


def entry_hash(*, at: str, kind: str, table: str, key: str, row_hash: str | None,
               detail: Any, prev_hash: str) -> str:
    """The hash of one chain entry, chained to the previous entry's: SHA-256 of
    :func:`entry_body` followed by ``prev_hash`` (ASCII hex)."""
    body = entry_body(at=at, kind=kind, table=table, key=key, row_hash=row_hash, detail=detail)
    return hashlib.sha256(body + prev_hash.encode("ascii")).hexdigest()


# -- seeing the writes --------------------------------------------------------------------------


def track(conn: sa.Connection) -> None:
    """Start noting the fact rows this connection's transaction writes."""
    conn.info[_DIRTY] = {}
    conn.info[_TOMBSTONES] = []


def untrack(conn: sa.Connection) -> None:
    """Stop (after the commit or the rollback)."""
    conn.info.pop(_DIRTY, None)
    conn.info.pop(_TOMBSTONES, None)


def install(engine: sa.Engine) -> None:
    """Listen to the engine's statements (only tracked connections are looked at)."""
    sa.event.listen(engine, "before_execute", _before_execute)
    sa.event.listen(engine, "after_execute", _after_execute)


def _fact_table(conn: sa.Connection, statement: Any) -> sa.Table | None:
    if _DIRTY not in conn.info or not isinstance(statement, sa.sql.dml.UpdateBase):
        return None
    table = getattr(statement, "table", None)
    return FACT_TABLES.get(getattr(table, "name", ""))


def _ids_in_where(table: sa.Table, where: Any, params: Mapping[str, Any]) -> list[Any] | None:
    """The ids a WHERE names by ``id = :value`` or ``id IN (...)`` (alone or AND-ed; the value
    bound in the statement or given with it, ``params``), or None."""
    clauses = (list(where.clauses) if isinstance(where, BooleanClauseList)
               and where.operator is operators.and_ else [where])
    for clause in clauses:
        if isinstance(clause, BinaryExpression) and clause.left is table.c.id and isinstance(
                clause.right, BindParameter):
            value = (clause.right.value if clause.right.value is not None
                     else params.get(clause.right.key))
            if value is None:
                continue
            if clause.operator is operators.eq:
                return [value]
            if clause.operator is operators.in_op and isinstance(value, list):
                return list(value)
    return None


def _set_columns(statement: Any, multiparams: Any) -> set[str]:
    names: set[str] = set()
    for key in (getattr(statement, "_values", None) or {}):
        names.add(getattr(key, "key", None) or getattr(key, "name", None) or str(key))
    for params in multiparams or ():
        if isinstance(params, Mapping):
            names.update(params)
    return names


def _before_execute(conn: sa.Connection, statement: Any, multiparams: Any, params: Any,
                    _options: Any) -> None:
    table = _fact_table(conn, statement)
    if table is None or isinstance(statement, sa.Insert):
        return
    if isinstance(statement, sa.Update):
        columns = _set_columns(statement, multiparams)
        if columns and columns <= BOOKKEEPING.get(table.name, frozenset()):
            return
    where = statement.whereclause
    given: Mapping[str, Any] = (multiparams[0] if multiparams and isinstance(
        multiparams[0], Mapping) else params or {})
    ids = _ids_in_where(table, where, given) if where is not None else None
    if ids is None:
        query = sa.select(table.c.id)
        if where is not None:
            query = query.where(where)
        names = {b.key for b in sa.sql.visitors.iterate(where) if isinstance(b, BindParameter)
                 } if where is not None else set()
        ids = list(conn.execute(query, {k: v for k, v in given.items() if k in names}).scalars())
    dirty = conn.info[_DIRTY].setdefault(table.name, set())
    dirty.update(ids)


def _after_execute(conn: sa.Connection, statement: Any, multiparams: Any, params: Any,
                   _options: Any, result: Any) -> None:
    table = _fact_table(conn, statement)
    if table is None or not isinstance(statement, sa.Insert):
        return
    dirty = conn.info[_DIRTY].setdefault(table.name, set())
    try:
        rows = result.inserted_primary_key_rows
    except (sa.exc.InvalidRequestError, AttributeError):
        rows = None
    if rows and all(r is not None and r[0] is not None for r in rows):
        dirty.update(r[0] for r in rows)
        return
    compiled = statement.compile(dialect=conn.dialect).params
    for extra in multiparams or [{}]:
        key = {**compiled, **(extra if isinstance(extra, Mapping) else {})}.get("id")
        if key is not None:
            dirty.add(key)


# -- appending ----------------------------------------------------------------------------------


@dataclass
class Tombstone:
    """What a purge removed: ``[table, key, row_hash]`` of each fact row, signed."""

    trader: str  # the trader's pseudonym (trace30.keys.trader_hash)
    tenant: str
    removed: list[list[str]] = field(default_factory=list)

    def detail(self, signer: Ed25519PrivateKey | None,
               key_id: str | None = None) -> dict[str, Any]:
        """The entry's ``detail``: the list, and its signature (absent without a key).
        ``key_id``: the signer's (:func:`_key_id`), when the caller has it already (deriving
        the public key costs as much as the signature)."""
        body: dict[str, Any] = {"trader": self.trader, "tenant": self.tenant,
                                "removed": sorted(self.removed)}
        if signer is not None:
            body["key_id"] = key_id or _key_id(signer.public_key())
            body["signature"] = base64.b64encode(signer.sign(canonical(body))).decode("ascii")
        return body


def _key_id(public: Ed25519PublicKey) -> str:
    from services.gateway.disclosures import key_id

    return key_id(public)


def tombstone(conn: sa.Connection, *, tenant: str, trader_id: str, trader: str,
              signer: Ed25519PrivateKey | None) -> Tombstone | None:
    """Before a purge deletes a trader's rows: list its fact rows and their hashes; the entry
    is added by :func:`flush` (None when the connection is not tracked)."""
    stones = tombstones(conn, tenant=tenant, traders=[(trader_id, trader)], signer=signer)
    return stones[0] if stones else None


def tombstones(conn: sa.Connection, *, tenant: str, traders: Sequence[tuple[str, str]],
               signer: Ed25519PrivateKey | None) -> list[Tombstone]:
    """:func:`tombstone` for many of the tenant's traders (``(trader id, pseudonym)``) at
    once (the retention purge's batches): on PostgreSQL one query for every fact table and
    trader, the rows hashed by the server (:func:`_pinned_row_hash`), and the triggers stop
    noting DELETEs for the rest of the transaction: the tombstones cover them. Empty when the
    connection is not tracked."""
    if _TOMBSTONES not in conn.info or not traders:
        return []
    stones = {trader_id: Tombstone(trader=pseudonym, tenant=tenant)
              for trader_id, pseudonym in traders}
    ids = list(stones)
    tables = [table for table in FACT_TABLES.values() if "trader_id" in table.c]
    # (disclosures have none: kept, their trader ids replaced, an update, chained)
    rows: Iterable[Sequence[Any]]
    if conn.dialect.name == "postgresql":
        conn.execute(_PURGE_MODE)
        among = sa.bindparam("trader_ids", ids, type_=sa.ARRAY(sa.String))
        rows = conn.execute(sa.union_all(*(
            sa.select(sa.literal(table.name, sa.String), table.c.trader_id, table.c.id,
                      _pinned_row_hash(table))
            .where(table.c.tenant_id == tenant, table.c.trader_id == sa.any_(among))
            for table in tables)))
    else:
        rows = [(table.name, row["trader_id"], row["id"], row_hash(table, row))
                for table in tables for row in conn.execute(sa.select(table).where(
                    table.c.tenant_id == tenant, table.c.trader_id.in_(ids))).mappings()]
    for name, trader_id, key, digest in rows:
        stones[trader_id].removed.append([name, str(key), digest])
    conn.info[_TOMBSTONES].append(_Sealing(list(stones.values()), signer,
                                           inbox=conn.dialect.name == "postgresql"))
    return list(stones.values())


class _Sealing:
    """Tombstones whose chain entries (their sorted lists, signatures and bodies) are made in a
    thread of their own while the purge's transaction deletes the rows: the thread that runs
    the transaction waits for the server meanwhile, and signing costs about as much as the
    server's deletes (a purge batch: 500 signatures, some 20 ms). The entries are dated when
    the tombstones are listed, in the transaction (as the triggers date theirs by its start).
    :func:`flush` takes them."""

    def __init__(self, stones: list[Tombstone], signer: Ed25519PrivateKey | None, *,
                 inbox: bool) -> None:
        self.stones = stones
        self._entries: list[dict[str, Any]] = []
        self._texts: list[str] = []
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._seal,
                                        args=(signer, datetime.now(UTC), inbox), daemon=True,
                                        name="trace30-chain-tombstones")
        self._thread.start()

    def _seal(self, signer: Ed25519PrivateKey | None, at: datetime, inbox: bool) -> None:
        try:
            key_id = _key_id(signer.public_key()) if signer is not None else None
            self._entries = [_entry(at, "tombstone", "", stone.trader, None,
                                    stone.detail(signer, key_id)) for stone in self.stones]
            if inbox:
                self._texts = [_inbox_text(entry) for entry in self._entries]
        except BaseException as e:  # raised again by entries(), in the transaction's thread
            self._error = e

    def entries(self) -> list[dict[str, Any]]:
        """The tombstones' entries (:func:`_entry`), in order, once made."""
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self._entries

    def inbox_texts(self) -> list[str]:
        """The same for PostgreSQL's inbox (:func:`_inbox_text`)."""
        self.entries()
        return self._texts


def _entry(at: datetime, kind: str, table: str, key: str, row_hash: str | None,
           detail: Any) -> dict[str, Any]:
    """A chain entry before its place in the chain: its columns and its ``body``."""
    return {"at": at, "kind": kind, "table_name": table, "row_key": key, "row_hash": row_hash,
            "detail": detail, "body": entry_body(at=_stamp(at), kind=kind, table=table,
                                                 key=key, row_hash=row_hash, detail=detail)}


def _inbox_text(entry: dict[str, Any]) -> str:
    """An entry as :data:`_INBOX_APPEND` reads it (JSON; its body, canonical JSON, as text)."""
    return json.dumps({**entry, "at": _stamp(entry["at"]), "body": entry["body"].decode("utf-8")},
                      ensure_ascii=False, default=_plain)


#: PostgreSQL, before a purge's deletes: the triggers stop noting DELETEs for the rest of the
#: transaction (``purge``: the tombstones list them), and the output settings that
#: ``trace30_chain_row_hash`` pins for each call (migration 0011) are pinned for the rest of
#: the transaction instead, so :func:`_pinned_row_hash` can compute the same hash inline.
_PURGE_MODE = sa.text(
    "SELECT set_config('trace30.chain', 'purge', true), set_config('timezone', 'UTC', true), "
    "set_config('datestyle', 'ISO, YMD', true), set_config('intervalstyle', 'postgres', true), "
    "set_config('bytea_output', 'hex', true), set_config('extra_float_digits', '1', true)")


def _pinned_row_hash(table: sa.Table) -> sa.ColumnElement[str]:
    """PostgreSQL: the row hash of :func:`_row_hash_sql` (``trace30_chain_row_hash``),
    computed inline, in a transaction that ran :data:`_PURGE_MODE`: a function with settings
    of its own is called, not inlined, and cost the purge's tombstones twice as much as the
    hashing itself (20 against 9 µs a verification). The bookkeeping columns are set to null
    as the function does (``jsonb_populate_record`` with a null for each)."""
    record: sa.ColumnElement[Any] = sa.literal_column(table.name)
    skip = sorted(BOOKKEEPING.get(table.name, ()))
    if skip:
        nulls = json.dumps(dict.fromkeys(skip))
        record = sa.func.jsonb_populate_record(
            record, sa.cast(sa.literal(nulls, sa.Text), postgresql.JSONB))
    text = sa.cast(record, sa.Text)
    return sa.func.encode(sa.func.sha256(sa.func.convert_to(text, "UTF8")), "hex",
                          type_=sa.String)


def flush(conn: sa.Connection, dialect: str) -> int:
    """Just before the commit: on SQLite, append the entries of what this transaction wrote;
    on PostgreSQL, add its tombstones to the inbox (the triggers added the rest). How many."""
    dirty: dict[str, set[Any]] = conn.info.get(_DIRTY) or {}
    sealings: list[_Sealing] = conn.info.get(_TOMBSTONES) or []
    if not any(dirty.values()) and not sealings:
        return 0
    at = datetime.now(UTC)
    buried = {(t, k) for sealing in sealings for stone in sealing.stones
              for t, k, _ in stone.removed}
    rows: list[dict[str, Any]] = []
    for name in sorted(dirty):
        table = FACT_TABLES[name]
        keys = sorted(str(k) for k in dirty[name])
        if not keys:
            continue
        found = row_hashes(conn, table, table.c.id.in_(keys))
        rows += [_entry(at, "row", name, key, found.get(key), None) for key in keys
                 if key in found or (name, key) not in buried]
    dirty.clear()
    if dialect == "postgresql":
        texts = [text for sealing in sealings for text in sealing.inbox_texts()]
        sealings.clear()
        return _append(conn, rows, texts)
    pending = [entry for sealing in sealings for entry in sealing.entries()] + rows
    sealings.clear()
    return _append(conn, pending)


def _append(conn: sa.Connection, entries: list[dict[str, Any]],
            texts: Sequence[str] = ()) -> int:
    """Append ``entries`` (:func:`_entry`'s) in their order; how many. PostgreSQL: into the
    inbox, after ``texts`` (entries already as :func:`_inbox_text`), in one statement (the
    sequencer chains them); SQLite: into the chain after its head (the caller's transaction
    is a ``BEGIN IMMEDIATE`` one)."""
    if conn.dialect.name == "postgresql":
        texts = [*texts, *(_inbox_text(entry) for entry in entries)]
        if texts:
            conn.execute(_INBOX_APPEND, {"entries": f"[{','.join(texts)}]"})
        return len(texts)
    if not entries:
        return 0
    head = conn.execute(sa.select(evidence_chain_table.c.seq, evidence_chain_table.c.hash)
                        .order_by(evidence_chain_table.c.seq.desc()).limit(1)).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    chained = []
    for entry in entries:
        seq += 1
        body = entry.pop("body")
        digest = hashlib.sha256(body + prev.encode("ascii")).hexdigest()  # entry_hash's
        chained.append({**entry, "seq": seq, "prev_hash": prev, "hash": digest})
        prev = digest
    conn.execute(sa.insert(evidence_chain_table), chained)
    return len(chained)


#: PostgreSQL: :func:`flush`'s entries into the inbox, in their order, in one statement with
#: one parameter: a JSON array of the entries (their body, canonical JSON, as text). A purge
#: batch's 500 tombstones as rows of parameters, or as arrays, cost the client (rendering,
#: escaping) several times what the server's insert does.
_INBOX_APPEND = sa.text("""
INSERT INTO evidence_chain_inbox (at, kind, table_name, row_key, row_hash, detail, body)
SELECT e.at, e.kind, e.table_name, e.row_key, e.row_hash, e.detail, convert_to(e.body, 'UTF8')
FROM ROWS FROM (json_to_recordset(CAST(:entries AS json)) AS (
         at timestamptz, kind text, table_name text, row_key text, row_hash text, detail json,
         body text))
     WITH ORDINALITY AS e (at, kind, table_name, row_key, row_hash, detail, body, n)
ORDER BY e.n""")


# -- adopting rows written before the chain -------------------------------------------------


#: How many rows :func:`adopt` reads and appends at a time (a log of millions from before the
#: chain is never held in memory whole).
ADOPT_BATCH = 5000


def _unchained(conn: sa.Connection, name: str) -> sa.Select[Any]:
    """The rows of fact table ``name`` that no chain entry (chained or waiting) has ever named:
    rows written before migration 0010, or with plain SQL since. A row whose entries exist but
    differ from it (edited), or whose latest entry records its deletion, is not one of them:
    adopting never launders an edit."""
    table = FACT_TABLES[name]
    c, inbox = evidence_chain_table.c, evidence_chain_inbox_table.c
    named = sa.or_(
        sa.exists().where(c.table_name == name, c.row_key == table.c.id),
        sa.exists().where(inbox.table_name == name, inbox.row_key == table.c.id))
    columns = ([table.c.id, _row_hash_sql(table).label("row_hash")]
               if conn.dialect.name == "postgresql" else [table])
    return sa.select(*columns).where(~named).order_by(table.c.id)


def unchained(conn: sa.Connection) -> dict[str, int]:
    """How many rows of each fact table no chain entry has ever named (:func:`_unchained`;
    tables with none left out)."""
    counts = {name: int(conn.execute(sa.select(sa.func.count()).select_from(
        _unchained(conn, name).order_by(None).subquery())).scalar_one())
        for name in FACT_TABLES}
    return {name: count for name, count in counts.items() if count}


def adopt(conn: sa.Connection) -> dict[str, int]:
    """Append an entry for each row :func:`unchained` counts, its ``detail``
    ``{"adopted": true}`` so that the chain itself says these rows were taken in as they were,
    not written through the log; how many of each table. In the caller's transaction (on
    SQLite a ``BEGIN IMMEDIATE`` one); on PostgreSQL through the inbox (sequence after the
    commit). The rows are read as a stream and appended :data:`ADOPT_BATCH` at a time."""
    at = datetime.now(UTC)
    adopted: dict[str, int] = {}
    for name, table in FACT_TABLES.items():
        if conn.dialect.name == "postgresql":  # one statement: nothing comes to the client
            appended = _adopting_insert(conn, name, at).returning(
                evidence_chain_inbox_table.c.id).cte()
            count = int(conn.execute(sa.select(sa.func.count()).select_from(appended))
                        .scalar_one())
        else:
            count = 0
            found = conn.execution_options(yield_per=ADOPT_BATCH).execute(
                _unchained(conn, name))
            for batch in found.mappings().partitions():
                _append(conn, [_entry(at, "row", name, str(row["id"]), row_hash(table, row),
                                      {"adopted": True}) for row in batch])
                count += len(batch)
        if count:
            adopted[name] = count
    return adopted


def _adopting_insert(conn: sa.Connection, name: str, at: datetime) -> sa.Insert:
    """PostgreSQL: the inbox entries of ``name``'s unchained rows, made by the server in one
    INSERT ... SELECT, their body :func:`entry_body`'s canonical JSON (as the triggers make it;
    ``detail`` ``{"adopted":true}``), in ``id`` order."""
    found = _unchained(conn, name).subquery()

    def quoted(value: sa.ColumnElement[Any]) -> sa.ColumnElement[str]:
        return sa.cast(sa.func.to_json(sa.cast(value, sa.Text)), sa.Text)

    text = (sa.literal('{"at":', sa.Text) + quoted(sa.literal(_stamp(at), sa.Text))
            + ',"detail":{"adopted":true},"key":' + quoted(found.c.id)
            + ',"kind":"row","row_hash":' + quoted(found.c.row_hash)
            + ',"table":' + quoted(sa.literal(name, sa.Text)) + "}")
    inbox = evidence_chain_inbox_table
    return sa.insert(inbox).from_select(
        ["at", "kind", "table_name", "row_key", "row_hash", "detail", "body"],
        sa.select(sa.literal(at, inbox.c.at.type), sa.literal("row", sa.String),
                  sa.literal(name, sa.String), found.c.id, found.c.row_hash,
                  sa.cast(sa.literal('{"adopted": true}', sa.Text), sa.JSON),
                  sa.func.convert_to(text, "UTF8", type_=sa.LargeBinary))
        .order_by(found.c.id))


# -- sequencing (PostgreSQL) --------------------------------------------------------------------

#: How many inbox entries one sequencing transaction moves at most.
SEQUENCE_BATCH = 1000


def sequence(conn: sa.Connection, *, rounds: int = 1_000_000, durable: bool = False) -> int:
    """PostgreSQL: move the inbox's entries into the chain, in ``id`` order, each hashed after
    the one before; how many. ``conn`` must not be in a transaction (each round of at most
    :data:`SEQUENCE_BATCH` entries is one); it stops when the inbox is empty or after
    ``rounds`` full rounds.

    A round takes the chain's advisory lock (a statement of its own, so the head it then
    reads is the latest) and moves the batch with one call of the server function
    ``trace30_chain_sequence`` (:data:`_SEQUENCE`; migration 0013: the hashes are computed by
    the server from each entry's ``body``). Its commit does not wait for the
    disk (``synchronous_commit`` off for it alone), so the lock is held for two round trips,
    not a disk flush: if the server crashes, the round is lost whole, its entries are back in
    the inbox (durable since their fact's commit) and are chained again, after the same head,
    in the same order, to the same hashes. ``durable`` (``trace30 audit head``) waits for the
    disk, which also makes every earlier round durable.
    """
    moved = 0
    for _ in range(rounds):
        with conn.begin():
            conn.execute(_SEQUENCE_LOCK, {"commit": "on" if durable else "off"})
            count = int(conn.execute(_SEQUENCE, {"limit": SEQUENCE_BATCH}).scalar_one())
        moved += count
        durable = False  # one durable commit covers every earlier one
        if count < SEQUENCE_BATCH:
            break
    return moved


#: The chain's lock (until the commit), and whether that commit waits for the disk. A durable
#: round takes a transaction id, so its commit writes a record and waits for the disk even
#: when the inbox is empty (and with it every earlier commit's record).
_SEQUENCE_LOCK = sa.text(
    "SELECT pg_advisory_xact_lock(:key), set_config('synchronous_commit', :commit, true), "
    "CASE WHEN :commit = 'on' THEN txid_current() END"
).bindparams(key=CHAIN_LOCK_KEY)

#: One round: the oldest inbox entries, each hashed after the one before from the head
#: (``sha256(body || prev_hash)``, the bytes of :func:`entry_hash`), appended to the chain and
#: removed from the inbox, by the server function of migration 0013 (a loop: 0011's recursive
#: query cost ten times as much). How many moved.
_SEQUENCE = sa.text("SELECT trace30_chain_sequence(:limit, :genesis)").bindparams(
    genesis=GENESIS)


class Sequencer:
    """PostgreSQL: a thread of this process that runs :func:`sequence` whenever a write has
    committed (:meth:`poke`), so that writers never wait for the chain; while it works, the
    writes that commit meanwhile are taken by its next round (batching under load). Started at
    the first poke in each process (a forked child starts its own); :meth:`close` stops it and
    sequences what is left."""

    #: How long a round waits after its first poke for more writes to gather. A round has a
    #: cost of its own (a connection, the lock, the call, the commit: about a millisecond of
    #: CPU between the process and the database), so under a trickle of writes one round a
    #: second, not four, is what the chain adds to each verification (bench/load.py); an
    #: entry waits this long at most, committed with its fact and counted by the audit.
    gather_s = 1.0

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._wake = threading.Event()
        self._stopping = threading.Event()  # close(): ends the gathering wait at once
        self._stop = False
        self._thread: threading.Thread | None = None
        self._pid = 0
        self._start_lock = threading.Lock()

    def poke(self) -> None:
        """A write has committed: its entries are in the inbox."""
        if self._thread is None or self._pid != os.getpid():
            with self._start_lock:
                if self._thread is None or self._pid != os.getpid():
                    self._stop = False
                    self._wake = threading.Event()
                    self._stopping = threading.Event()
                    self._thread = threading.Thread(target=self._run, daemon=True,
                                                    name="trace30-chain-sequencer")
                    self._pid = os.getpid()
                    self._thread.start()
        self._wake.set()

    def drain(self, *, durable: bool = False) -> int:
        """Sequence everything waiting now, in the calling thread; how many."""
        with self.engine.connect() as conn:
            return sequence(conn, durable=durable)

    def close(self) -> None:
        """Stop the thread (after its round) and sequence what is left."""
        thread = self._thread
        if thread is not None and self._pid == os.getpid():
            self._stop = True
            self._stopping.set()
            self._wake.set()
            thread.join(30)
            self._thread = None
            try:
                self.drain()
            except sa.exc.SQLAlchemyError:
                log.warning("evidence chain: the last entries wait in the inbox",
                            exc_info=True)

    def _run(self) -> None:
        while not self._stop:  # (checked again after the round: close() may come during it)
            self._wake.wait()  # a poke; idle, no round (the sweeper is the back-stop)
            if self._stop:
                return
            # Let the writes of the next moments join this round: under load one round then
            # moves many entries, and the sequencer's statements stay a small share of the
            # database's work; alone, an entry waits this long at most before its round.
            # close() ends the wait (and sequences what is left itself).
            if self._stopping.wait(self.gather_s):
                return
            self._wake.clear()
            try:
                self.drain()
            except Exception:  # a database blip: the entries wait, and are tried again
                log.warning("evidence chain: sequencing failed; the entries wait in the inbox",
                            exc_info=True)
                self._wake.wait(5.0)
                self._wake.set()


def _stamp(at: datetime) -> str:
    """The entry time as hashed: UTC, microseconds (what both backends keep)."""
    return at.astimezone(UTC).isoformat(timespec="microseconds")


# -- auditing -----------------------------------------------------------------------------------


@dataclass
class Problem:
    """The first thing :func:`verify` found wrong."""

    what: str  # edited | deleted | inserted outside the log | chain broken | reordered
    table: str
    key: str
    seq: int | None
    detail: str

    def as_json(self) -> dict[str, Any]:
        return {"problem": self.what, "table": self.table, "key": self.key, "seq": self.seq,
                "detail": self.detail}


@dataclass
class Report:
    """What :func:`verify` found: the head, the entries checked, the problems (first first)."""

    entries: int = 0
    waiting: int = 0  # entries committed and hashed, still in the inbox (PostgreSQL)
    rows: int = 0
    head_seq: int = 0
    head_hash: str = GENESIS
    head_at: str | None = None
    problems: list[Problem] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        return not self.problems


def verify(conn: sa.Connection, public: Ed25519PublicKey | None = None) -> Report:
    """Walk the chain in ``seq`` order and compare every fact row with its latest entry.

    Run it in one snapshot (``REPEATABLE READ`` on PostgreSQL; a SQLite read transaction is
    one). With ``public``, a tombstone whose signature does not verify with it is a problem.
    """
    report = Report()
    chain_problems: list[Problem] = []
    latest: dict[tuple[str, str], tuple[int, str | None]] = {}
    buried: dict[tuple[str, str], int] = {}
    prev, expected = GENESIS, 1
    c = evidence_chain_table.c
    for e in conn.execution_options(yield_per=2000).execute(
            sa.select(evidence_chain_table).order_by(c.seq)).mappings():
        report.entries += 1
        where = (e["table_name"] or "(tombstone)", e["row_key"], e["seq"])
        if e["seq"] != expected:
            chain_problems.append(Problem("removed or reordered", *where,
                                          f"entry {expected} is missing"))
        if e["prev_hash"] != prev:
            chain_problems.append(Problem("removed or reordered", *where,
                                          "prev_hash is not the previous entry's hash"))
        recomputed = entry_hash(at=_stamp(e["at"]), kind=e["kind"],
                                table=e["table_name"], key=e["row_key"],
                                row_hash=e["row_hash"], detail=e["detail"],
                                prev_hash=e["prev_hash"])
        if recomputed != e["hash"]:
            chain_problems.append(Problem("edited", *where,
                                          "the entry's hash does not match its content"))
        if e["kind"] == "tombstone":
            detail = e["detail"] or {}
            if public is not None and not _signature_ok(detail, public):
                chain_problems.append(Problem("edited", *where,
                                              "the tombstone's signature does not verify"))
            for table, key, _ in detail.get("removed", []):
                buried[(table, key)] = e["seq"]
                latest.pop((table, key), None)
        else:
            latest[(e["table_name"], e["row_key"])] = (e["seq"], e["row_hash"])
            buried.pop((e["table_name"], e["row_key"]), None)
        prev, expected = e["hash"], e["seq"] + 1
        report.head_seq, report.head_hash, report.head_at = e["seq"], e["hash"], _stamp(e["at"])
    # Entries waiting in the inbox (committed, not yet sequenced) are their rows' latest.
    inbox = evidence_chain_inbox_table
    for e in conn.execute(sa.select(inbox).order_by(inbox.c.id)).mappings():
        report.waiting += 1
        if e["kind"] == "tombstone":
            detail = e["detail"] or {}
            if public is not None and not _signature_ok(detail, public):
                chain_problems.append(Problem("edited", "(tombstone)", e["row_key"], None,
                                              "a waiting tombstone's signature does not "
                                              "verify"))
            for table, key, _ in detail.get("removed", []):
                latest.pop((table, key), None)
        else:
            latest[(e["table_name"], e["row_key"])] = (0, e["row_hash"])
    row_problems: list[Problem] = []
    for name, table in FACT_TABLES.items():
        for key, digest in _all_row_hashes(conn, table):
            report.rows += 1
            seen = latest.pop((name, key), None)
            if seen is None or seen[1] is None:
                row_problems.append(Problem(
                    "inserted outside the log", name, key, (seen[0] or None) if seen else None,
                    "the row has no chain entry" if seen is None
                    else "the row's latest entry records its deletion"))
            elif digest != seen[1]:
                row_problems.append(Problem("edited", name, key, seen[0] or None,
                                            "the row differs from its latest chain entry"))
    for (name, key), (seq, gone) in latest.items():
        if gone is not None:
            row_problems.append(Problem("deleted", name, key, seq or None,
                                        "the row is gone without a tombstone"))
    report.problems = sorted(chain_problems, key=lambda p: p.seq or 0) + sorted(
        row_problems, key=lambda p: (p.seq is None, p.seq or 0, p.table, p.key))
    return report


def _all_row_hashes(conn: sa.Connection, table: sa.Table) -> Iterable[tuple[str, str]]:
    """Every row's ``(id, hash)``, streamed."""
    if conn.dialect.name == "postgresql":
        for key, digest in conn.execution_options(yield_per=5000).execute(
                sa.select(table.c.id, _row_hash_sql(table))):
            yield str(key), digest
        return
    for row in conn.execution_options(yield_per=2000).execute(sa.select(table)).mappings():
        yield str(row["id"]), row_hash(table, row)


def _signature_ok(detail: dict[str, Any], public: Ed25519PublicKey) -> bool:
    from cryptography.exceptions import InvalidSignature

    body = {k: v for k, v in detail.items() if k != "signature"}
    try:
        public.verify(base64.b64decode(detail.get("signature", "")), canonical(body))
    except (InvalidSignature, ValueError):
        return False
    return True


def verify_tombstone(detail: dict[str, Any], public: Ed25519PublicKey) -> bool:
    """Whether a tombstone's signature verifies with ``public``."""
    return "signature" in detail and _signature_ok(detail, public)


def signed_head(conn: sa.Connection, signer: Ed25519PrivateKey) -> dict[str, Any]:
    """The current head ``{seq, hash, at, key_id, signature}``: the signature (base64
    Ed25519) is over the canonical JSON of ``{seq, hash, at, key_id}``."""
    c = evidence_chain_table.c
    head = conn.execute(sa.select(c.seq, c.hash, c.at).order_by(c.seq.desc()).limit(1)).first()
    body: dict[str, Any] = {"seq": head[0] if head else 0,
                            "hash": head[1] if head else GENESIS,
                            "at": _stamp(head[2]) if head else None,
                            "key_id": _key_id(signer.public_key())}
    body["signature"] = base64.b64encode(signer.sign(canonical(body))).decode("ascii")
    return body


def verify_head(head: dict[str, Any], public: Ed25519PublicKey) -> bool:
    """Whether a published head's signature verifies with ``public``."""
    return "signature" in head and _signature_ok(head, public)


def problems_text(problems: Iterable[Problem]) -> list[str]:
    return [f"{p.what}: {p.table} {p.key}" + (f" (entry {p.seq})" if p.seq else "")
            + f": {p.detail}" for p in problems]
