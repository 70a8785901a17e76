"""The evidence log: verifications, traders, webhook deliveries and their attempts.

Revision ID: 0001
Revises:
Create Date: 2025-01-01

Written by hand (not generated) and frozen: later schema changes are new revisions. Types are
spelled out here rather than imported from ``evidence.py``, so that editing the tables there
never changes what this revision did. ``tests/gateway/test_evidence.py`` checks that the
migrated schema and ``evidence.metadata`` agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _ts(name: str, nullable: bool = True) -> sa.Column[datetime]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    """Create the four tables and their indexes."""
    op.create_table(
        "verifications",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("fingerprint", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("verdict", sa.String(16)),
        sa.Column("items", sa.JSON()),
        sa.Column("reasons", sa.JSON()),
        sa.Column("checks", sa.JSON()),
        sa.Column("name_consistency", sa.JSON()),
        sa.Column("evidence", sa.JSON()),
        sa.Column("submission", sa.JSON(), nullable=False),
        sa.Column("sealed_submission", sa.Text()),
        sa.Column("account_fingerprint", sa.String(128)),
        sa.Column("request_id", sa.String(255)),
        _ts("created_at", nullable=False),
        _ts("settled_at"),
        _ts("checked_at"),
        _ts("expires_at"),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        _ts("next_retry_at"),
        sa.PrimaryKeyConstraint("id", name="pk_verifications"),
    )
    op.create_index(
        "ix_verifications_trader_id_created_at", "verifications", ["trader_id", "created_at"]
    )
    op.create_index("ix_verifications_fingerprint", "verifications", ["fingerprint"])
    op.create_index(
        "ix_verifications_account_fingerprint", "verifications", ["account_fingerprint"]
    )
    op.create_index(
        "ix_verifications_verdict_next_retry_at", "verifications", ["verdict", "next_retry_at"]
    )

    op.create_table(
        "traders",
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("current_verification_id", sa.String(100)),
        sa.Column("current_verdict", sa.String(16)),
        _ts("current_created_at"),
        _ts("updated_at", nullable=False),
        _ts("ended_at"),
        sa.PrimaryKeyConstraint("trader_id", name="pk_traders"),
        sa.ForeignKeyConstraint(
            ["current_verification_id"],
            ["verifications.id"],
            name="fk_traders_current_verification_id_verifications",
        ),
    )
    op.create_index(
        "ix_traders_current_verification_id", "traders", ["current_verification_id"]
    )
    op.create_index("ix_traders_current_verdict", "traders", ["current_verdict"])
    op.create_index("ix_traders_ended_at", "traders", ["ended_at"])

    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(100), nullable=False),
        sa.Column("client_id", sa.String(255), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("event", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("verification_id", sa.String(100), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempt_count", sa.Integer(), nullable=False, server_default="0"),
        _ts("created_at", nullable=False),
        _ts("next_attempt_at"),
        _ts("lease_until"),
        _ts("delivered_at"),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
    )
    op.create_index(
        "ix_webhook_deliveries_status_next_attempt_at",
        "webhook_deliveries",
        ["status", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_verification_id", "webhook_deliveries", ["verification_id"]
    )
    op.create_index("ix_webhook_deliveries_trader_id", "webhook_deliveries", ["trader_id"])

    op.create_table(
        "webhook_attempts",
        sa.Column("delivery_id", sa.String(100), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False, autoincrement=False),
        _ts("at", nullable=False),
        sa.Column("status_code", sa.Integer()),
        sa.Column("error", sa.Text()),
        sa.Column("duration_ms", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("delivery_id", "number", name="pk_webhook_attempts"),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            name="fk_webhook_attempts_delivery_id_webhook_deliveries",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop the four tables (and with them every piece of evidence)."""
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("traders")
    op.drop_table("verifications")
