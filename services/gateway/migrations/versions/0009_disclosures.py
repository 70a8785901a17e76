"""Disclosures to authorities (DSA Art 30(6)) and legal holds.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30

- ``disclosures``: the log of every bundle handed to an authority: who, to whom, when, under
  what legal basis, which traders and which files (their SHA-256) and the manifest's SHA-256.
  The bundle itself is not kept.
- ``legal_holds``: a hold placed on a trader (an authority's request, litigation); the
  retention purge skips a trader while a hold on it is not released.

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True)


def upgrade() -> None:
    """Create ``disclosures`` and ``legal_holds``."""
    op.create_table(
        "disclosures",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("staff_id", sa.String(32)),
        sa.Column("authority", sa.String(255), nullable=False),
        sa.Column("reference", sa.String(255), nullable=False),
        sa.Column("legal_basis", sa.Text, nullable=False),
        sa.Column("trader_ids", _json(), nullable=False),
        sa.Column("files", _json(), nullable=False),
        sa.Column("manifest_sha256", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_disclosures"),
    )
    op.create_index("ix_disclosures_tenant_id_at", "disclosures", ["tenant_id", "at"])
    op.create_table(
        "legal_holds",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("placed_at", _TS, nullable=False),
        sa.Column("placed_by", sa.String(255), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("released_at", _TS),
        sa.Column("released_by", sa.String(255)),
        sa.PrimaryKeyConstraint("id", name="pk_legal_holds"),
    )
    op.create_index("ix_legal_holds_tenant_id_trader_id_released_at", "legal_holds",
                    ["tenant_id", "trader_id", "released_at"])


def downgrade() -> None:
    """Drop them."""
    op.drop_index("ix_legal_holds_tenant_id_trader_id_released_at", table_name="legal_holds")
    op.drop_table("legal_holds")
    op.drop_index("ix_disclosures_tenant_id_at", table_name="disclosures")
    op.drop_table("disclosures")
