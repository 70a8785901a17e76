"""The evidence chain's inbox and, on PostgreSQL, the triggers that fill it.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30

``evidence_chain_inbox`` holds the chain entries of facts written but not yet chained. On
PostgreSQL a trigger on each fact table adds the entry inside the writing statement, for
connections that turned the chain on (``SET trace30.chain = on``), and the sequencer
(services/gateway/evidence/chain.py ``sequence``) moves the entries into ``evidence_chain``.
Appending to the chain inside every writer's transaction, under the chain's lock, halved the
submissions per second on PostgreSQL (bench/chain.py). On SQLite the table stays empty (the
application appends in its ``BEGIN IMMEDIATE`` transactions).

``trace30_chain_row_hash(row, skip)``: SHA-256 of the row's text (PostgreSQL's record syntax,
every column in the table's order) with the columns ``skip`` (bookkeeping) set to null, with the
time zone, the date and interval styles, the bytea output and the float digits pinned, so it
does not depend on the session that computes it. (The record text, not the row's ``jsonb``:
four times cheaper per row, since JSON columns are not parsed again.)

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``evidence_chain_inbox``."""
    op.create_table(
        "evidence_chain_inbox",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_key", sa.String(255), nullable=False),
        sa.Column("row_hash", sa.String(64)),
        sa.Column("detail", sa.JSON(none_as_null=True)),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_evidence_chain_inbox"),
    )
    if _postgresql():
        _triggers()


#: The fact tables and their bookkeeping columns (not hashed), as at this revision.
_FACTS = {"verifications": ("attempts", "next_retry_at"), "staff_actions": (), "reviews": (),
          "statements": (), "complaints": (), "documents": (), "disclosures": (),
          "legal_holds": ()}

_ROW_HASH = """
CREATE FUNCTION trace30_chain_row_hash(r anyelement, skip text[]) RETURNS text
LANGUAGE sql STABLE
SET timezone = 'UTC' SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres'
SET bytea_output = 'hex' SET extra_float_digits = 1
AS $$ SELECT encode(sha256(convert_to((CASE WHEN cardinality(skip) = 0 THEN r
    ELSE jsonb_populate_record(r, (SELECT jsonb_object_agg(k, 'null'::jsonb)
                                   FROM unnest(skip) AS k)) END)::text, 'UTF8')), 'hex') $$
"""

# The row's hash as trace30_chain_row_hash computes it (inlined: the same settings are pinned
# once per trigger call); an UPDATE of a table with bookkeeping columns (the trigger's
# arguments) that changes none of the others adds nothing. The entry's body is the canonical
# JSON of chain.entry_body (keys sorted, no spaces).
_NOTE = """
CREATE FUNCTION trace30_chain_note() RETURNS trigger LANGUAGE plpgsql
SET timezone = 'UTC' SET datestyle = 'ISO, YMD' SET intervalstyle = 'postgres'
SET bytea_output = 'hex' SET extra_float_digits = 1
AS $$
DECLARE
    mode text := current_setting('trace30.chain', true);
    nulls jsonb;
    row_text text;
    key text;
    digest text;
    stamp text;
BEGIN
    IF mode IS NULL OR mode NOT IN ('on', 'purge') THEN
        RETURN NULL;
    END IF;
    IF TG_OP = 'DELETE' THEN
        IF mode = 'purge' THEN
            RETURN NULL;  -- the purge's tombstone lists it
        END IF;
        key := OLD.id;
        digest := NULL;
    ELSE
        key := NEW.id;
        IF TG_NARGS > 0 THEN  -- the bookkeeping columns, set to null
            nulls := (SELECT jsonb_object_agg(k, 'null'::jsonb) FROM unnest(TG_ARGV) AS k);
            row_text := jsonb_populate_record(NEW, nulls)::text;
            IF TG_OP = 'UPDATE' AND row_text = jsonb_populate_record(OLD, nulls)::text THEN
                RETURN NULL;  -- only bookkeeping changed
            END IF;
        ELSE
            row_text := NEW::text;
        END IF;
        digest := encode(sha256(convert_to(row_text, 'UTF8')), 'hex');
    END IF;
    stamp := to_char(now(), 'YYYY-MM-DD"T"HH24:MI:SS.US') || '+00:00';
    INSERT INTO evidence_chain_inbox (at, kind, table_name, row_key, row_hash, detail, body)
    VALUES (now(), 'row', TG_TABLE_NAME, key, digest, NULL, convert_to(
        '{"at":' || to_json(stamp)::text || ',"detail":null,"key":' || to_json(key)::text
        || ',"kind":"row","row_hash":' || coalesce(to_json(digest)::text, 'null')
        || ',"table":' || to_json(TG_TABLE_NAME::text)::text || '}', 'UTF8'));
    RETURN NULL;
END
$$
"""


def _postgresql() -> bool:
    return bool(op.get_context().dialect.name == "postgresql")


def _sql(statement: str) -> sa.TextClause:
    """``statement`` as it is (its ``:`` are not parameters), online or printed offline."""
    return sa.text(statement.replace(":", "\\:"))


def _triggers() -> None:
    """PostgreSQL: the row hash, the trigger function, a trigger on each fact table."""
    op.execute(_sql(_ROW_HASH))
    op.execute(_sql(_NOTE))
    for table, skip in _FACTS.items():
        arguments = ", ".join(f"'{column}'" for column in skip)
        op.execute(f"CREATE TRIGGER trace30_chain AFTER INSERT OR UPDATE OR DELETE ON {table} "
                   f"FOR EACH ROW EXECUTE FUNCTION trace30_chain_note({arguments})")


def downgrade() -> None:
    """Drop them (entries still waiting are lost: run ``trace30 audit head`` first)."""
    if _postgresql():
        for table in _FACTS:
            op.execute(f"DROP TRIGGER trace30_chain ON {table}")
        op.execute("DROP FUNCTION trace30_chain_note()")
        op.execute("DROP FUNCTION trace30_chain_row_hash(anyelement, text[])")
    op.drop_table("evidence_chain_inbox")
