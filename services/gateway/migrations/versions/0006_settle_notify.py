"""Durable settling: whether a client was promised the verdict by webhook (it got a 202).

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30

``notify_requested`` is set when a caller stopped waiting for a running verification and was
answered 202; the transaction that settles the verification reads it and writes the
``verification.completed`` webhook in the same transaction, whichever process settles it (the
one that started it, or the sweeper that recovers it after a crash). Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``verifications.notify_requested`` and index running work by its recovery time."""
    # A plain ADD COLUMN (with its default) on both backends: SQLite's batch mode would copy
    # and drop the table, which the traders' foreign key refuses once rows exist.
    op.add_column("verifications", sa.Column("notify_requested", sa.Boolean(), nullable=False,
                                             server_default=sa.false()))
    op.create_index("ix_verifications_state_next_retry_at", "verifications",
                    ["state", "next_retry_at"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_verifications_state_next_retry_at", table_name="verifications")
    with op.batch_alter_table("verifications") as batch:
        batch.drop_column("notify_requested")
