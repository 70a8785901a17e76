"""Corrections (DSA Art 30(3)): when a trader that could trade must correct its data by, and
when the marketplace was told that the time is up.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``correction_due_at`` (indexed) and ``suspension_due_sent_at`` to traders."""
    with op.batch_alter_table("traders") as batch:
        batch.add_column(sa.Column("correction_due_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("suspension_due_sent_at", sa.DateTime(timezone=True)))
    op.create_index("ix_traders_correction_due_at", "traders", ["correction_due_at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_traders_correction_due_at", table_name="traders")
    with op.batch_alter_table("traders") as batch:
        batch.drop_column("suspension_due_sent_at")
        batch.drop_column("correction_due_at")
