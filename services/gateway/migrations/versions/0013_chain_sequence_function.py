"""The evidence chain's sequencing round as a server function, and a cheaper trigger on
``verifications`` (PostgreSQL).

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-30

``trace30_chain_sequence(lim, genesis)`` moves the ``lim`` oldest entries of
``evidence_chain_inbox`` into ``evidence_chain``, in ``id`` order, each hashed after the one
before from the chain's head (``sha256(body || prev_hash)``, the bytes of
``chain.entry_hash``; ``genesis`` before the first entry), and answers how many it moved. The
caller holds the chain's advisory lock (services/gateway/evidence/chain.py ``sequence``).

It replaces 0011's recursive common table expression, whose join of each step with the whole
batch made a round of 1,000 entries cost about 80 ms on the server (75 µs an entry); a loop
hashes them in about 8 ms, so the chain's sequencing is no longer a visible share of a busy
database's work (bench/chain.py). The entries are read once, in ``id`` order through the
primary key, and removed by their ids, never by a range: an entry whose writer commits during
the round (with a smaller id than one moved) waits for the next round. Sequential scans are off
for it: the inbox is small but full of the dead rows of earlier rounds until it is vacuumed, and
a scan of them in every round cost more than the rest of the round.

``trace30_chain_note_verifications()`` replaces 0011's ``trace30_chain_note('attempts',
'next_retry_at')`` on ``verifications``: the same entry, the same row hash (the row's record
text with the bookkeeping columns ``attempts`` and ``next_retry_at`` set to null), but the two
columns are nulled by assignment to a copy of the row instead of a trip through ``jsonb``
(``jsonb_populate_record``), which cost about twice as much per row, and verifications are
most of the writes (saved running, then settled). A later migration that adds a bookkeeping
column to ``verifications`` must null it here too (and in ``chain.BOOKKEEPING``). The other
fact tables keep ``trace30_chain_note()``, which has no column to null for them.

Both trigger functions lose 0011's SET clauses, which set and restored five settings (time
zone, date and interval styles, bytea output, float digits) on every call: about a third of
the trigger's cost. The evidence log's connections set those values when they connect
(``chain.switch_on``), and the triggers check them (cheaply); a session with other values
(someone's ``SET TimeZone``) gets its rows hashed by ``trace30_chain_row_hash``, which pins
them, so the hash never depends on the session. The entry's time is written in UTC whatever
the session's time zone.

Frozen like 0001. SQLite has no inbox and no triggers: nothing to do there.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_SEQUENCE = """
CREATE FUNCTION trace30_chain_sequence(lim integer, genesis text) RETURNS integer
LANGUAGE plpgsql SET enable_seqscan = off AS $$
DECLARE
    head_seq bigint;
    head_hash text;
    ids bigint[] := '{}';
    ats timestamptz[] := '{}';
    kinds text[] := '{}';
    tables text[] := '{}';
    keys text[] := '{}';
    row_hashes text[] := '{}';
    details json[] := '{}';
    prevs text[] := '{}';
    hashes text[] := '{}';
    entry record;
BEGIN
    SELECT seq, hash INTO head_seq, head_hash FROM evidence_chain ORDER BY seq DESC LIMIT 1;
    IF NOT FOUND THEN
        head_seq := 0;
        head_hash := genesis;
    END IF;
    FOR entry IN SELECT * FROM evidence_chain_inbox ORDER BY id LIMIT lim LOOP
        ids := ids || entry.id;
        ats := ats || entry.at;
        kinds := kinds || entry.kind::text;
        tables := tables || entry.table_name::text;
        keys := keys || entry.row_key::text;
        row_hashes := row_hashes || entry.row_hash::text;
        details := details || entry.detail;
        prevs := prevs || head_hash;
        head_hash := encode(sha256(entry.body || convert_to(head_hash, 'UTF8')), 'hex');
        hashes := hashes || head_hash;
    END LOOP;
    IF cardinality(ids) = 0 THEN
        RETURN 0;
    END IF;
    INSERT INTO evidence_chain (seq, at, kind, table_name, row_key, row_hash, prev_hash, hash,
                                detail)
    SELECT head_seq + n, at, kind, table_name, row_key, row_hash, prev_hash, hash, detail
    FROM unnest(ats, kinds, tables, keys, row_hashes, prevs, hashes, details)
         WITH ORDINALITY AS moved (at, kind, table_name, row_key, row_hash, prev_hash, hash,
                                   detail, n);
    DELETE FROM evidence_chain_inbox WHERE id = ANY(ids);
    RETURN cardinality(ids);
END
$$
"""


# Whether this session's settings are the ones trace30_chain_row_hash pins (the row's record
# text is then the same; 'Etc/UTC' writes times as 'UTC' does, and an ISO date style writes
# the same whatever its field order): the evidence log's connections set them when they
# connect (chain.switch_on). Checking them costs far less than 0011's SET clauses, which set
# and restored five settings on every call of the trigger.
_PINNED = """current_setting('TimeZone') IN ('UTC', 'Etc/UTC')
        AND current_setting('DateStyle') LIKE 'ISO,%'
        AND current_setting('IntervalStyle') = 'postgres'
        AND current_setting('bytea_output') = 'hex'
        AND current_setting('extra_float_digits') = '1'"""

# Whether the connection notes its writes (``trace30.chain``: ``on``, or ``purge`` whose
# DELETEs its tombstones list), and a DELETE's entry (no row hash).
_NOTED = """    IF mode IS NULL OR mode NOT IN ('on', 'purge') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF mode = 'purge' THEN
            RETURN NULL;  -- the purge's tombstone lists it
        END IF;
        key := OLD.id;
        digest := NULL;
"""

# The entry's body (chain.entry_body's canonical JSON), its time in UTC whatever the session's
# time zone.
_INBOX = """
    stamp := to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
    INSERT INTO evidence_chain_inbox (at, kind, table_name, row_key, row_hash, detail, body)
    VALUES (now(), 'row', TG_TABLE_NAME, key, digest, NULL, convert_to(
        '{"at":' || to_json(stamp)::text || ',"detail":null,"key":' || to_json(key)::text
        || ',"kind":"row","row_hash":' || coalesce(to_json(digest)::text, 'null')
        || ',"table":' || to_json(TG_TABLE_NAME::text)::text || '}', 'UTF8'));
    RETURN NULL;
END
$$
"""

# 0011's trace30_chain_note without its SET clauses (for the tables with no bookkeeping
# column: it is called without arguments; with arguments it still nulls them through jsonb).
_NOTE = """
CREATE OR REPLACE FUNCTION trace30_chain_note() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mode text := current_setting('trace30.chain', true);
    key text;
    digest text;
    stamp text;
BEGIN
NOTED    ELSIF TG_NARGS > 0 THEN  -- the bookkeeping columns, set to null
        key := NEW.id;
        IF TG_OP = 'UPDATE' AND trace30_chain_row_hash(NEW, TG_ARGV)
                                = trace30_chain_row_hash(OLD, TG_ARGV) THEN
            RETURN NULL;  -- only bookkeeping changed
        END IF;
        digest := trace30_chain_row_hash(NEW, TG_ARGV);
    ELSE
        key := NEW.id;
        IF PINNED THEN
            digest := encode(sha256(convert_to(NEW::text, 'UTF8')), 'hex');
        ELSE
            digest := trace30_chain_row_hash(NEW, '{}');
        END IF;
    END IF;
""".replace("NOTED", _NOTED).replace("PINNED", _PINNED) + _INBOX

# The same for verifications, its bookkeeping columns nulled in a copy of the row (``kept``;
# the old row of an UPDATE that changed them likewise, to see whether only they changed).
_NOTE_VERIFICATIONS = """
CREATE FUNCTION trace30_chain_note_verifications() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    mode text := current_setting('trace30.chain', true);
    kept verifications%ROWTYPE;
    was verifications%ROWTYPE;
    row_text text;
    key text;
    digest text;
    stamp text;
BEGIN
NOTED    ELSE
        key := NEW.id;
        kept := NEW;
        kept.attempts := NULL;
        kept.next_retry_at := NULL;
        row_text := kept::text;
        IF TG_OP = 'UPDATE' AND (NEW.attempts IS DISTINCT FROM OLD.attempts
                                 OR NEW.next_retry_at IS DISTINCT FROM OLD.next_retry_at) THEN
            was := OLD;
            was.attempts := NULL;
            was.next_retry_at := NULL;
            IF row_text = was::text THEN
                RETURN NULL;  -- only bookkeeping changed
            END IF;
        END IF;
        IF PINNED THEN
            digest := encode(sha256(convert_to(row_text, 'UTF8')), 'hex');
        ELSE
            digest := trace30_chain_row_hash(kept, '{}');
        END IF;
    END IF;
""".replace("NOTED", _NOTED).replace("PINNED", _PINNED) + _INBOX

_TRIGGER = ("CREATE TRIGGER trace30_chain AFTER INSERT OR UPDATE OR DELETE ON verifications "
            "FOR EACH ROW EXECUTE FUNCTION {}")


def _sql(statement: str) -> sa.TextClause:
    """``statement`` as it is (its ``:`` are not parameters), online or printed offline."""
    return sa.text(statement.replace(":", "\\:"))


def _postgresql() -> bool:
    return bool(op.get_context().dialect.name == "postgresql")


def upgrade() -> None:
    """PostgreSQL: create ``trace30_chain_sequence``; point the verifications' trigger at
    ``trace30_chain_note_verifications``."""
    if _postgresql():
        op.execute(_sql(_SEQUENCE))
        op.execute(_sql(_NOTE))
        op.execute(_sql(_NOTE_VERIFICATIONS))
        op.execute("DROP TRIGGER trace30_chain ON verifications")
        op.execute(_TRIGGER.format("trace30_chain_note_verifications()"))


def downgrade() -> None:
    """PostgreSQL: 0011's functions and triggers again; drop 0013's (0011's sequencer
    statement needs none of them)."""
    if _postgresql():
        op.execute("DROP TRIGGER trace30_chain ON verifications")
        op.execute("DROP FUNCTION trace30_chain_note_verifications()")
        op.execute("DROP FUNCTION trace30_chain_sequence(integer, text)")
        # 0011's trace30_chain_note, with its SET clauses
        previous = importlib.import_module(
            "services.gateway.migrations.versions.0011_chain_inbox")
        op.execute("DROP FUNCTION trace30_chain_note() CASCADE")  # (its triggers too)
        op.execute(_sql(previous._NOTE))
        for table, skip in previous._FACTS.items():
            arguments = ", ".join(f"'{column}'" for column in skip)
            op.execute(f"CREATE TRIGGER trace30_chain AFTER INSERT OR UPDATE OR DELETE ON "
                       f"{table} FOR EACH ROW EXECUTE FUNCTION trace30_chain_note({arguments})")
