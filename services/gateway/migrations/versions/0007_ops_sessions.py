"""Staff dashboard sessions kept server-side, so that signing out revokes them.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30

The signed session cookie carries a random session id; this table holds its SHA-256, whose
client it is, when it expires and when it was revoked (sign-out). A copied cookie stops working
when its session is revoked. Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``ops_sessions``."""
    op.create_table(
        "ops_sessions",
        sa.Column("id_sha256", sa.String(64), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.PrimaryKeyConstraint("id_sha256", name="pk_ops_sessions"),
    )
    op.create_index("ix_ops_sessions_expires_at", "ops_sessions", ["expires_at"])


def downgrade() -> None:
    """Drop it again."""
    op.drop_index("ix_ops_sessions_expires_at", table_name="ops_sessions")
    op.drop_table("ops_sessions")
