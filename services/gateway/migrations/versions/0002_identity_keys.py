"""Identity keys of a verification: the VAT number and the registration it was made with.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

With ``account_fingerprint`` (0001) they let the gateway find the other traders that use the
same payment account, VAT number or company registration: one seller behind several accounts,
or a rejected seller coming back under a new name (``verdicts.Link``). Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Add ``vat_key`` and ``registration_key`` to verifications, each indexed."""
    with op.batch_alter_table("verifications") as batch:
        batch.add_column(sa.Column("vat_key", sa.String(64)))
        batch.add_column(sa.Column("registration_key", sa.String(160)))
    op.create_index("ix_verifications_vat_key", "verifications", ["vat_key"])
    op.create_index("ix_verifications_registration_key", "verifications", ["registration_key"])


def downgrade() -> None:
    """Drop them again."""
    op.drop_index("ix_verifications_registration_key", table_name="verifications")
    op.drop_index("ix_verifications_vat_key", table_name="verifications")
    with op.batch_alter_table("verifications") as batch:
        batch.drop_column("registration_key")
        batch.drop_column("vat_key")
