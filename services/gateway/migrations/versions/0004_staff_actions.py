"""Staff actions: who re-verified a trader or recorded the end of its relationship, and when.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``staff_actions``, indexed by trader and time."""
    op.create_table(
        "staff_actions",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("verification_id", sa.String(100)),
        sa.Column("detail", sa.JSON()),
        sa.PrimaryKeyConstraint("id", name="pk_staff_actions"),
    )
    op.create_index("ix_staff_actions_trader_id_at", "staff_actions", ["trader_id", "at"])


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_staff_actions_trader_id_at", table_name="staff_actions")
    op.drop_table("staff_actions")
