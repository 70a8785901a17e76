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

def _trader(tenant: str, trader_id: str) -> tuple[Any, Any]:
    """The WHERE conditions that pick one trader's row: its tenant and its id."""
    tt = traders_table
    return tt.c.tenant_id == tenant, tt.c.trader_id == trader_id
