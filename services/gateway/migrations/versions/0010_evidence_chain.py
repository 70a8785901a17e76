"""The tamper-evident evidence log: ``evidence_chain``.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-30

One hash chain per database (services/gateway/evidence/chain.py): an entry per write of a fact
row, or a purge's signed tombstone. Rows written before this revision have no entry until the
application writes them again: ``trace30 audit verify`` names them "inserted outside the log".

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Create ``evidence_chain``."""
    op.create_table(
        "evidence_chain",
        sa.Column("seq", sa.BigInteger, autoincrement=False, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("table_name", sa.String(64), nullable=False),
        sa.Column("row_key", sa.String(255), nullable=False),
        sa.Column("row_hash", sa.String(64)),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("detail", sa.JSON(none_as_null=True)),
        sa.PrimaryKeyConstraint("seq", name="pk_evidence_chain"),
    )


def downgrade() -> None:
    """Drop it."""
    op.drop_table("evidence_chain")
