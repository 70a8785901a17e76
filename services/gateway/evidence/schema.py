"""The evidence log's tables, as the Alembic migrations make them (one definition, here).

Timestamps are :class:`UtcDateTime`: timezone-aware UTC on the way in and out; a naive datetime
is refused, because it is a bug that would silently shift a deadline by the server's offset.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

STATES = ("running", "settled")
DELIVERY_STATUSES = ("pending", "delivered", "failed")


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
    # Casework (migration 0008): ``automated`` (the checks decided) or ``manual`` (a reviewer's
    # decision, ``review_id``), and the automated verification a manual one settles.
    sa.Column("source", sa.String(16), nullable=False, server_default="automated"),
    sa.Column("settles_verification_id", sa.String(100)),
    sa.Column("review_id", sa.String(32)),
    sa.Index(None, "tenant_id", "trader_id", "created_at"),
    sa.Index(None, "fingerprint"),
    sa.Index(None, "tenant_id", "account_fingerprint"),
    sa.Index(None, "tenant_id", "vat_key"),
    sa.Index(None, "tenant_id", "registration_key"),
    sa.Index(None, "verdict", "next_retry_at"),
    sa.Index(None, "state", "next_retry_at"),
    # migration 0012: the staff list's keyset walk (most recently checked first; with the id,
    # the past verifications it steps over are skipped without reading their rows)
    sa.Index(None, "tenant_id", "checked_at", "trader_id", "id"),
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
    # Casework (migration 0008): the trader's Art 30(3) state (TRADER_STATES), since when, the
    # open correction request (items, reasons, who asked), and the approval in force (the review
    # that a later automated re-verification does not undo unless the facts changed).
    sa.Column("state", sa.String(32), nullable=False, server_default="active"),
    sa.Column("state_changed_at", UtcDateTime),
    sa.Column("correction", _json()),
    sa.Column("suspended_at", UtcDateTime),
    sa.Column("reinstated_at", UtcDateTime),
    sa.Column("approval_review_id", sa.String(32)),
    # migration 0012: the country of the current verification's address (GET /v1/traders)
    sa.Column("country", sa.String(2)),
    sa.PrimaryKeyConstraint("tenant_id", "trader_id"),
    sa.Index(None, "current_verification_id"),
    sa.Index(None, "tenant_id", "current_verdict"),
    sa.Index(None, "ended_at"),
    sa.Index(None, "correction_due_at"),
    sa.Index(None, "tenant_id", "state"),
    # migration 0012: GET /v1/traders's keyset order (updated_at, trader_id), whole and by
    # verdict or country
    sa.Index(None, "tenant_id", "updated_at", "trader_id"),
    sa.Index(None, "tenant_id", "current_verdict", "updated_at", "trader_id"),
    sa.Index(None, "tenant_id", "country", "updated_at", "trader_id"),
    # migration 0012: the review queue's keyset walk (needs_review, the longest waiting first)
    sa.Index("ix_traders_review_queue", "tenant_id", "current_verdict", "current_created_at",
             "trader_id"),
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
    # who acted: "staff:<username>" (a person, migration 0008: staff_id) or "client:<id>"
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),  # reverify | end_relationship
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("verification_id", sa.String(100)),
    sa.Column("detail", _json()),
    sa.Column("tenant_id", sa.String(64), nullable=False, server_default="default"),
    sa.Column("staff_id", sa.String(32)),
    sa.Index(None, "tenant_id", "trader_id", "at"),
)


#: Staff dashboard sessions (migration 0007): the cookie carries a random id, this table its
#: SHA-256; signing out revokes the session, so a copy of the cookie stops working.
ops_sessions_table = sa.Table(
    "ops_sessions",
    metadata,
    sa.Column("id_sha256", sa.String(64), primary_key=True),
    # the API key signed in with (automation), or none for a named staff member (staff_id)
    sa.Column("client_id", sa.String(255)),
    sa.Column("staff_id", sa.String(32)),
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

def _trader(tenant: str, trader_id: str) -> tuple[Any, Any]:
    """The WHERE conditions that pick one trader's row: its tenant and its id."""
    tt = traders_table
    return tt.c.tenant_id == tenant, tt.c.trader_id == trader_id


# --- Casework (migration 0008): named staff, documents, review decisions, statements of
# reasons (Art 17) and complaints (Art 20, 30(4)). Every table here that names a trader is
# emptied for that trader by the purge (Art 30(5)), in ``Traders.purge_trader``.

STAFF_ROLES = ("viewer", "reviewer", "admin")
TRADER_STATES = ("active", "correction_requested", "suspended", "reinstated")
DOCUMENT_KINDS = ("identity_document", "eid_assertion", "register_extract", "bank_statement",
                  "other")
REVIEW_DECISIONS = ("approve", "reject", "request_information")
STATEMENT_KINDS = ("rejection", "correction_request", "suspension")
COMPLAINT_STATUSES = ("open", "upheld", "rejected")

#: Named staff of a marketplace (tenant): the person every dashboard action is recorded under.
#: ``password_hash`` is an argon2id hash; a disabled account cannot sign in.
staff_table = sa.Table(
    "staff",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("username", sa.String(64), nullable=False),
    sa.Column("display_name", sa.String(255), nullable=False),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("password_hash", sa.Text, nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Column("disabled_at", UtcDateTime),
    sa.UniqueConstraint("tenant_id", "username"),
)

#: Supporting documents (an identity document, an eID assertion, a register extract, ...).
#: The file itself is sealed with the evidence keys and kept by a storage backend
#: (``storage``: ``database`` keeps it in ``document_blobs``); ``sha256`` is the plain file's.
#: ``name_shown`` (the name the document bears) is sealed too: it is personal data.
documents_table = sa.Table(
    "documents",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("issuing_country", sa.String(2)),
    sa.Column("expires_on", sa.Date),
    sa.Column("name_shown", sa.Text),
    sa.Column("content_type", sa.String(64), nullable=False),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    sa.Column("storage", sa.String(16), nullable=False),
    sa.Column("storage_key", sa.String(255), nullable=False),
    sa.Column("name_check", _json()),
    sa.Column("uploaded_at", UtcDateTime, nullable=False),
    sa.Column("uploaded_by", sa.String(255), nullable=False),
    sa.Column("staff_id", sa.String(32)),
    sa.Index(None, "tenant_id", "trader_id", "uploaded_at"),
)

#: The sealed bytes of a document kept by the ``database`` storage backend.
document_blobs_table = sa.Table(
    "document_blobs",
    metadata,
    sa.Column("storage_key", sa.String(255), primary_key=True),
    sa.Column("content", sa.LargeBinary, nullable=False),
)

#: A reviewer's decision on a trader: ``approve`` | ``reject`` | ``request_information``, the
#: Art 30(1) items it covers, the mandatory note, the documents it relied on, the automated
#: verification it settles and the manual verification it made. ``facts_fingerprint``: what
#: the decision was taken on, so a later automated re-verification can tell whether the facts
#: changed.
reviews_table = sa.Table(
    "reviews",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("decision", sa.String(32), nullable=False),
    sa.Column("items", _json()),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("document_ids", _json()),
    sa.Column("reviewer", sa.String(255), nullable=False),
    sa.Column("staff_id", sa.String(32)),
    sa.Column("decided_at", UtcDateTime, nullable=False),
    sa.Column("settles_verification_id", sa.String(100)),
    sa.Column("verification_id", sa.String(100)),
    sa.Column("facts_fingerprint", sa.String(64)),
    sa.Index(None, "tenant_id", "trader_id", "decided_at"),
)

#: Statements of reasons (DSA Art 17) for every rejection, correction request and suspension:
#: ``content`` holds the facts, the legal ground (paragraph and item), the sources consulted
#: and when, and how to complain; ``automated`` whether no person took the decision.
statements_table = sa.Table(
    "statements",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("verification_id", sa.String(100)),
    sa.Column("review_id", sa.String(32)),
    sa.Column("automated", sa.Boolean, nullable=False),
    sa.Column("decided_by", sa.String(255)),
    sa.Column("locale", sa.String(16), nullable=False, server_default="en"),
    sa.Column("content", _json(), nullable=False),
    sa.Column("created_at", UtcDateTime, nullable=False),
    sa.Index(None, "tenant_id", "trader_id", "created_at"),
)

#: A trader's complaint (Art 20, 30(4)) against a decision (its statement), decided by a
#: person other than the one who took the contested decision.
complaints_table = sa.Table(
    "complaints",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("statement_id", sa.String(32)),
    sa.Column("contested_by", sa.String(255)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("locale", sa.String(16), nullable=False, server_default="en"),
    sa.Column("received_at", UtcDateTime, nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("decided_at", UtcDateTime),
    sa.Column("decided_by", sa.String(255)),
    sa.Column("staff_id", sa.String(32)),
    sa.Column("decision_note", sa.Text),
    sa.Index(None, "tenant_id", "trader_id", "received_at"),
    sa.Index(None, "tenant_id", "status", "received_at"),
)


# --- Disclosures (migration 0009): Art 30(6) bundles handed to authorities, and legal holds.

#: The log of every disclosure bundle (DSA Art 30(6)): who (``actor``, ``staff_id``), to whom
#: (``authority``, ``reference``), when, under what ``legal_basis``, which traders and which
#: files (``{name: sha256}``) and the signed manifest's SHA-256 and key id. The bundle itself is
#: not kept. The retention purge keeps the row but replaces a purged trader's id in
#: ``trader_ids`` by its :func:`trace30.keys.trader_hash` (``"purged:<hash>"``).
disclosures_table = sa.Table(
    "disclosures",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("actor", sa.String(255), nullable=False),
    sa.Column("staff_id", sa.String(32)),
    sa.Column("authority", sa.String(255), nullable=False),
    sa.Column("reference", sa.String(255), nullable=False),
    sa.Column("legal_basis", sa.Text, nullable=False),
    sa.Column("trader_ids", _json(), nullable=False),
    sa.Column("files", _json(), nullable=False),
    sa.Column("manifest_sha256", sa.String(64), nullable=False),
    sa.Column("key_id", sa.String(64), nullable=False),
    sa.Index(None, "tenant_id", "at"),
)

#: Legal holds: while a trader has a hold not yet released, the retention purge skips it (and
#: reports it as held). A released hold stays as a record until the trader is purged.
legal_holds_table = sa.Table(
    "legal_holds",
    metadata,
    sa.Column("id", sa.String(32), primary_key=True),
    sa.Column("tenant_id", sa.String(64), nullable=False),
    sa.Column("trader_id", sa.String(255), nullable=False),
    sa.Column("placed_at", UtcDateTime, nullable=False),
    sa.Column("placed_by", sa.String(255), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("released_at", UtcDateTime),
    sa.Column("released_by", sa.String(255)),
    sa.Index(None, "tenant_id", "trader_id", "released_at"),
)


# --- The tamper-evident evidence log (migration 0010; services/gateway/evidence/chain.py).

#: One hash chain per database: an entry for every write of a fact row (its state after the
#: write, ``row_hash``), or a purge's ``tombstone`` (``detail``: the removed rows' hashes,
#: signed); ``hash`` = SHA-256 of the entry's canonical JSON followed by ``prev_hash``.
evidence_chain_table = sa.Table(
    "evidence_chain",
    metadata,
    sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),  # row | tombstone
    sa.Column("table_name", sa.String(64), nullable=False),
    sa.Column("row_key", sa.String(255), nullable=False),
    sa.Column("row_hash", sa.String(64)),  # null: the row was deleted by the application
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sa.Column("detail", _json()),
)


# --- The chain's inbox (migration 0011; services/gateway/evidence/chain.py).

#: The entries written facts are waiting for: a write transaction adds its entries here (the
#: row's hash as written, no lock), and the sequencer (:func:`chain.sequence`, run after each
#: commit, by the sweeper and by ``trace30 audit``) moves them into ``evidence_chain`` in ``id``
#: order, chaining their hashes, under the chain's lock.
evidence_chain_inbox_table = sa.Table(
    "evidence_chain_inbox",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
              autoincrement=True),
    sa.Column("at", UtcDateTime, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("table_name", sa.String(64), nullable=False),
    sa.Column("row_key", sa.String(255), nullable=False),
    sa.Column("row_hash", sa.String(64)),
    sa.Column("detail", _json()),
    sa.Column("body", sa.LargeBinary, nullable=False),  # chain.entry_body: hashed with prev_hash
)
