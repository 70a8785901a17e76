"""The tamper-evident evidence log (issue 13 point 4): one SHA-256 hash chain per database.

Every write of a **fact** (a row of :data:`FACT_TABLES`: verifications, staff actions, reviews,
statements of reasons, complaints, document metadata, disclosures, legal holds) appends an entry
to ``evidence_chain`` in the same transaction, for the row's new state:

- ``row_hash`` = SHA-256 of the canonical JSON (sorted keys, no spaces, UTF-8) of the row's fact
  columns (every column but :data:`BOOKKEEPING`: a verification's ``attempts`` and
  ``next_retry_at`` change on every retry and are not facts);
- ``hash`` = SHA-256 of ``canonical({at, kind, table, key, row_hash, detail})`` followed by the
  previous entry's ``hash`` (``prev_hash``; 64 zeros before the first entry); ``seq`` counts
  up from 1 without a gap.

A legitimate UPDATE (a verification settled, a complaint decided) appends a new entry; the audit
compares each row's current content with its **latest** entry. A DELETE made by the application
appends an entry with ``row_hash`` null. The purge (Art 30(5)) appends one ``tombstone`` entry
instead, whose ``detail`` lists ``[table, key, row_hash]`` of every fact row it removed, the
trader's pseudonym (:func:`trace30.keys.trader_hash`), and an Ed25519 signature (the disclosure
signing key) over that list: the personal data is gone, and the chain still verifies.

How the writes are seen (one place): :class:`~services.gateway.evidence.db.Database` opens every
write transaction through ``_write``, which marks the connection as tracked; engine
``before_execute``/``after_execute`` listeners note the primary keys of the fact rows that an
INSERT, UPDATE or DELETE touches on a tracked connection (an UPDATE or DELETE whose WHERE does not
name the id is first resolved by a SELECT of the ids in the same transaction); just before the
commit :func:`flush` re-reads those rows and appends their entries. Concurrent writers form one
chain: on PostgreSQL :func:`flush` takes the transaction-scoped advisory lock
:data:`CHAIN_LOCK_KEY` before reading the head (held until the commit that follows at once); on
SQLite every write transaction is ``BEGIN IMMEDIATE``, so writers are already serialised.
Writes made outside ``_write`` (plain SQL, another program) append nothing: that is what
:func:`verify` finds.
"""

from __future__ import annotations

import base64
import hashlib
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import operators
from sqlalchemy.sql.elements import BinaryExpression, BindParameter, BooleanClauseList

from services.gateway.evidence.schema import (
    complaints_table,
    disclosures_table,
    documents_table,
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

#: The PostgreSQL advisory lock that makes concurrent writers append to one chain.
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


def _ids_in_where(table: sa.Table, where: Any) -> list[Any] | None:
    """The ids a WHERE names by ``id = :value`` or ``id IN (...)`` (alone or AND-ed), or None."""
    clauses = (list(where.clauses) if isinstance(where, BooleanClauseList)
               and where.operator is operators.and_ else [where])
    for clause in clauses:
        if isinstance(clause, BinaryExpression) and clause.left is table.c.id and isinstance(
                clause.right, BindParameter) and clause.right.value is not None:
            if clause.operator is operators.eq:
                return [clause.right.value]
            if clause.operator is operators.in_op and isinstance(clause.right.value, list):
                return list(clause.right.value)
    return None


def _set_columns(statement: Any, multiparams: Any) -> set[str]:
    names: set[str] = set()
    for key in (getattr(statement, "_values", None) or {}):
        names.add(getattr(key, "key", None) or getattr(key, "name", None) or str(key))
    for params in multiparams or ():
        if isinstance(params, dict):
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
    ids = _ids_in_where(table, where) if where is not None else None
    if ids is None:
        query = sa.select(table.c.id)
        if where is not None:
            query = query.where(where)
        ids = list(conn.execute(query).scalars())
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
        key = {**compiled, **(extra if isinstance(extra, dict) else {})}.get("id")
        if key is not None:
            dirty.add(key)


# -- appending ----------------------------------------------------------------------------------


@dataclass
class Tombstone:
    """What a purge removed: ``[table, key, row_hash]`` of each fact row, signed."""

    trader: str  # the trader's pseudonym (trace30.keys.trader_hash)
    tenant: str
    removed: list[list[str]] = field(default_factory=list)

    def detail(self, signer: Ed25519PrivateKey | None) -> dict[str, Any]:
        """The entry's ``detail``: the list, and its signature (absent without a key)."""
        body: dict[str, Any] = {"trader": self.trader, "tenant": self.tenant,
                                "removed": sorted(self.removed)}
        if signer is not None:
            body["key_id"] = _key_id(signer.public_key())
            body["signature"] = base64.b64encode(signer.sign(canonical(body))).decode("ascii")
        return body


def _key_id(public: Ed25519PublicKey) -> str:
    from services.gateway.disclosures import key_id

    return key_id(public)


def tombstone(conn: sa.Connection, *, tenant: str, trader_id: str, trader: str,
              signer: Ed25519PrivateKey | None) -> Tombstone | None:
    """Before a purge deletes a trader's rows: list its fact rows and their hashes; the entry
    is appended by :func:`flush` (None when the connection is not tracked)."""
    if _TOMBSTONES not in conn.info:
        return None
    stone = Tombstone(trader=trader, tenant=tenant)
    for table in FACT_TABLES.values():
        if "trader_id" not in table.c:
            continue  # disclosures: kept, their trader ids replaced (an update, chained)
        for row in conn.execute(sa.select(table).where(
                table.c.tenant_id == tenant, table.c.trader_id == trader_id)).mappings():
            stone.removed.append([table.name, str(row["id"]), row_hash(table, row)])
    conn.info[_TOMBSTONES].append((stone, signer))
    return stone


def flush(conn: sa.Connection, dialect: str) -> int:
    """Append the entries of what this transaction wrote (just before its commit); how many."""
    dirty: dict[str, set[Any]] = conn.info.get(_DIRTY) or {}
    stones: list[tuple[Tombstone, Any]] = conn.info.get(_TOMBSTONES) or []
    if not any(dirty.values()) and not stones:
        return 0
    at = datetime.now(UTC)
    pending: list[dict[str, Any]] = []
    buried: set[tuple[str, str]] = set()
    locked = False  # the PostgreSQL advisory lock held (taken with the first rows read)
    for stone, signer in stones:
        detail = stone.detail(signer)
        buried.update((t, k) for t, k, _ in stone.removed)
        pending.append({"kind": "tombstone", "table_name": "", "row_key": stone.trader,
                        "row_hash": None, "detail": detail})
    for name in sorted(dirty):
        table = FACT_TABLES[name]
        keys = sorted(str(k) for k in dirty[name])
        if not keys:
            continue
        query = sa.select(table).where(table.c.id.in_(keys))
        if dialect == "postgresql" and not locked:  # the chain's lock, in the same round trip
            query = query.add_columns(
                sa.func.pg_advisory_xact_lock(CHAIN_LOCK_KEY).label("chain_lock"))
        found = {}
        for r in conn.execute(query).mappings():
            found[str(r["id"])] = row_hash(table, r)
            locked = True
        for key in keys:
            if key not in found and (name, key) in buried:
                continue
            pending.append({"kind": "row", "table_name": name, "row_key": key,
                            "row_hash": found.get(key), "detail": None})
    stamp = _stamp(at)
    if dialect == "postgresql":
        if not locked:
            conn.execute(sa.select(sa.func.pg_advisory_xact_lock(CHAIN_LOCK_KEY)))
        if len(pending) == 1:  # the usual case: one round trip, the hash computed by the server
            item = pending[0]
            body = entry_body(at=stamp, kind=item["kind"], table=item["table_name"],
                              key=item["row_key"], row_hash=item["row_hash"],
                              detail=item["detail"])
            conn.execute(_APPEND_ONE, {**item, "at": at, "body": body,
                                       "detail": None if item["detail"] is None
                                       else json.dumps(item["detail"])})
            dirty.clear()
            stones.clear()
            return 1
    head = conn.execute(sa.select(evidence_chain_table.c.seq, evidence_chain_table.c.hash)
                        .order_by(evidence_chain_table.c.seq.desc()).limit(1)).first()
    seq, prev = (head[0], head[1]) if head else (0, GENESIS)
    rows = []
    for item in pending:
        seq += 1
        digest = entry_hash(at=stamp, kind=item["kind"], table=item["table_name"],
                            key=item["row_key"], row_hash=item["row_hash"],
                            detail=item["detail"], prev_hash=prev)
        rows.append({**item, "seq": seq, "at": at, "prev_hash": prev, "hash": digest})
        prev = digest
    conn.execute(sa.insert(evidence_chain_table), rows)
    dirty.clear()
    stones.clear()
    return len(rows)


#: PostgreSQL: append one entry after the head, its hash computed by the server
#: (``sha256(body || prev_hash)``, the same bytes as :func:`entry_hash`). Run after the chain's
#: advisory lock is held, so this statement's snapshot has the latest head.
_APPEND_ONE = sa.text(
    "INSERT INTO evidence_chain (seq, at, kind, table_name, row_key, row_hash, prev_hash, "
    "hash, detail) "
    "SELECT h.seq + 1, :at, :kind, :table_name, :row_key, :row_hash, h.hash, "
    "encode(sha256(:body || convert_to(h.hash, 'UTF8')), 'hex'), CAST(:detail AS json) "
    "FROM (SELECT seq, hash FROM evidence_chain UNION ALL SELECT 0, :genesis "
    "ORDER BY seq DESC LIMIT 1) AS h"
).bindparams(sa.bindparam("at", type_=sa.DateTime(timezone=True)),
             sa.bindparam("body", type_=sa.LargeBinary), sa.bindparam("genesis", GENESIS))


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
    row_problems: list[Problem] = []
    for name, table in FACT_TABLES.items():
        for row in conn.execution_options(yield_per=2000).execute(
                sa.select(table)).mappings():
            report.rows += 1
            key = str(row["id"])
            seen = latest.pop((name, key), None)
            if seen is None or seen[1] is None:
                row_problems.append(Problem(
                    "inserted outside the log", name, key, seen[0] if seen else None,
                    "the row has no chain entry" if seen is None
                    else "the row's latest entry records its deletion"))
            elif row_hash(table, row) != seen[1]:
                row_problems.append(Problem("edited", name, key, seen[0],
                                            "the row differs from its latest chain entry"))
    for (name, key), (seq, digest) in latest.items():
        if digest is not None:
            row_problems.append(Problem("deleted", name, key, seq,
                                        "the row is gone without a tombstone"))
    report.problems = sorted(chain_problems, key=lambda p: p.seq or 0) + sorted(
        row_problems, key=lambda p: (p.seq is None, p.seq or 0, p.table, p.key))
    return report


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
