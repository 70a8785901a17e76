"""Tenants: every trader belongs to a marketplace; existing rows go to ``default``.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30

One deployment may serve several marketplaces (or brands of one group), each a tenant: a
client (API key) belongs to one. ``tenant_id`` is added to ``verifications``, ``traders``,
``webhook_deliveries`` and ``staff_actions`` (NOT NULL, server default ``'default'``, so every
row written before this revision, and every writer that does not name a tenant, is in
``default``); a trader becomes ``(tenant_id, trader_id)``; the indexes of per-tenant lookups
(linkage keys, a trader's history and staff actions, verdict summaries, deliveries of a
trader) lead with ``tenant_id``.

SQLite cannot change a primary key in place: ``traders`` is rebuilt by ``batch_alter_table``
(nothing refers to it; it refers to ``verifications``, whose rows stay). The other tables only
gain a column. Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: (table, old index, its columns, new index, its columns)
_INDEXES = (
    ("verifications", "ix_verifications_trader_id_created_at", ["trader_id", "created_at"],
     "ix_verifications_tenant_id_trader_id_created_at", ["tenant_id", "trader_id", "created_at"]),
    ("verifications", "ix_verifications_account_fingerprint", ["account_fingerprint"],
     "ix_verifications_tenant_id_account_fingerprint", ["tenant_id", "account_fingerprint"]),
    ("verifications", "ix_verifications_vat_key", ["vat_key"],
     "ix_verifications_tenant_id_vat_key", ["tenant_id", "vat_key"]),
    ("verifications", "ix_verifications_registration_key", ["registration_key"],
     "ix_verifications_tenant_id_registration_key", ["tenant_id", "registration_key"]),
    ("traders", "ix_traders_current_verdict", ["current_verdict"],
     "ix_traders_tenant_id_current_verdict", ["tenant_id", "current_verdict"]),
    ("webhook_deliveries", "ix_webhook_deliveries_trader_id", ["trader_id"],
     "ix_webhook_deliveries_tenant_id_trader_id", ["tenant_id", "trader_id"]),
    ("staff_actions", "ix_staff_actions_trader_id_at", ["trader_id", "at"],
     "ix_staff_actions_tenant_id_trader_id_at", ["tenant_id", "trader_id", "at"]),
)  # fmt: skip

_TABLES = ("verifications", "traders", "webhook_deliveries", "staff_actions")


def _tenant_column() -> sa.Column[str]:
    return sa.Column("tenant_id", sa.String(64), nullable=False, server_default="default")


def upgrade() -> None:
    """Add ``tenant_id`` everywhere (rows land in ``default``), re-key traders, re-index."""
    for table, old, _, _, _ in _INDEXES:
        op.drop_index(old, table_name=table)
    for table in _TABLES:
        with op.batch_alter_table(table) as batch:
            batch.add_column(_tenant_column())
    with op.batch_alter_table("traders") as batch:
        batch.drop_constraint("pk_traders", type_="primary")
        batch.create_primary_key("pk_traders", ["tenant_id", "trader_id"])
    for table, _, _, new, columns in _INDEXES:
        op.create_index(new, table, columns)


def downgrade() -> None:
    """Back to one tenant; refused while two tenants hold the same trader id (one of them
    would have to be deleted, and a migration does not delete evidence)."""
    bind = op.get_bind()
    clash = bind.execute(sa.text(
        "SELECT trader_id FROM traders GROUP BY trader_id HAVING COUNT(*) > 1 LIMIT 1")).first()
    if clash is not None:
        raise RuntimeError("cannot downgrade below 0005: several tenants have a trader with "
                           "the same id")
    for table, _, _, new, _ in _INDEXES:
        op.drop_index(new, table_name=table)
    with op.batch_alter_table("traders") as batch:
        batch.drop_constraint("pk_traders", type_="primary")
        batch.create_primary_key("pk_traders", ["trader_id"])
        batch.drop_column("tenant_id")
    for table in _TABLES:
        if table == "traders":
            continue
        if bind.dialect.name == "sqlite":
            # In place (SQLite 3.35+): rebuilding verifications would break the foreign
            # keys that point at it.
            op.execute(f"ALTER TABLE {table} DROP COLUMN tenant_id")
        else:
            op.drop_column(table, "tenant_id")
    for table, old, columns, _, _ in _INDEXES:
        op.create_index(old, table, columns)
