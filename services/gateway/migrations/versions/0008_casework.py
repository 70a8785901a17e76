"""Casework: named staff, supporting documents, review decisions, trader states (Art 30(3)),
statements of reasons (Art 17) and complaints (Art 20, 30(4)).

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30

- ``staff``: named staff accounts of a tenant, with a role and an argon2id password hash;
  ``ops_sessions.staff_id`` (a session is a staff member's or an API key's, so ``client_id``
  becomes nullable) and ``staff_actions.staff_id``.
- ``documents`` and ``document_blobs`` (the sealed files of the database storage backend).
- ``reviews``; ``verifications.source`` (``automated`` for every existing row),
  ``settles_verification_id`` and ``review_id``.
- ``traders.state`` (``active`` for every existing trader), ``state_changed_at``,
  ``correction``, ``suspended_at``, ``reinstated_at``, ``approval_review_id``.
- ``statements`` and ``complaints``.

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_TS = sa.DateTime(timezone=True)


def _json() -> sa.JSON:
    return sa.JSON(none_as_null=True)


def upgrade() -> None:
    """Create the casework tables and columns."""
    op.create_table(
        "staff",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(255), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("disabled_at", _TS),
        sa.PrimaryKeyConstraint("id", name="pk_staff"),
        sa.UniqueConstraint("tenant_id", "username", name="uq_staff_tenant_id_username"),
    )
    with op.batch_alter_table("ops_sessions") as batch:
        batch.alter_column("client_id", existing_type=sa.String(255), nullable=True)
        batch.add_column(sa.Column("staff_id", sa.String(32)))
    with op.batch_alter_table("staff_actions") as batch:
        batch.add_column(sa.Column("staff_id", sa.String(32)))

    op.create_table(
        "documents",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("issuing_country", sa.String(2)),
        sa.Column("expires_on", sa.Date),
        sa.Column("name_shown", sa.Text),
        sa.Column("content_type", sa.String(64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("storage", sa.String(16), nullable=False),
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("name_check", _json()),
        sa.Column("uploaded_at", _TS, nullable=False),
        sa.Column("uploaded_by", sa.String(255), nullable=False),
        sa.Column("staff_id", sa.String(32)),
        sa.PrimaryKeyConstraint("id", name="pk_documents"),
    )
    op.create_index("ix_documents_tenant_id_trader_id_uploaded_at", "documents",
                    ["tenant_id", "trader_id", "uploaded_at"])
    op.create_table(
        "document_blobs",
        sa.Column("storage_key", sa.String(255), nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=False),
        sa.PrimaryKeyConstraint("storage_key", name="pk_document_blobs"),
    )

    op.create_table(
        "reviews",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("decision", sa.String(32), nullable=False),
        sa.Column("items", _json()),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("document_ids", _json()),
        sa.Column("reviewer", sa.String(255), nullable=False),
        sa.Column("staff_id", sa.String(32)),
        sa.Column("decided_at", _TS, nullable=False),
        sa.Column("settles_verification_id", sa.String(100)),
        sa.Column("verification_id", sa.String(100)),
        sa.Column("facts_fingerprint", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_reviews"),
    )
    op.create_index("ix_reviews_tenant_id_trader_id_decided_at", "reviews",
                    ["tenant_id", "trader_id", "decided_at"])
    with op.batch_alter_table("verifications") as batch:
        batch.add_column(sa.Column("source", sa.String(16), nullable=False,
                                   server_default="automated"))
        batch.add_column(sa.Column("settles_verification_id", sa.String(100)))
        batch.add_column(sa.Column("review_id", sa.String(32)))

    with op.batch_alter_table("traders") as batch:
        batch.add_column(sa.Column("state", sa.String(32), nullable=False,
                                   server_default="active"))
        batch.add_column(sa.Column("state_changed_at", _TS))
        batch.add_column(sa.Column("correction", _json()))
        batch.add_column(sa.Column("suspended_at", _TS))
        batch.add_column(sa.Column("reinstated_at", _TS))
        batch.add_column(sa.Column("approval_review_id", sa.String(32)))
    op.create_index("ix_traders_tenant_id_state", "traders", ["tenant_id", "state"])

    op.create_table(
        "statements",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("verification_id", sa.String(100)),
        sa.Column("review_id", sa.String(32)),
        sa.Column("automated", sa.Boolean, nullable=False),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("locale", sa.String(16), nullable=False, server_default="en"),
        sa.Column("content", _json(), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_statements"),
    )
    op.create_index("ix_statements_tenant_id_trader_id_created_at", "statements",
                    ["tenant_id", "trader_id", "created_at"])
    op.create_table(
        "complaints",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("tenant_id", sa.String(64), nullable=False),
        sa.Column("trader_id", sa.String(255), nullable=False),
        sa.Column("statement_id", sa.String(32)),
        sa.Column("contested_by", sa.String(255)),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("locale", sa.String(16), nullable=False, server_default="en"),
        sa.Column("received_at", _TS, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("decided_at", _TS),
        sa.Column("decided_by", sa.String(255)),
        sa.Column("staff_id", sa.String(32)),
        sa.Column("decision_note", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_complaints"),
    )
    op.create_index("ix_complaints_tenant_id_trader_id_received_at", "complaints",
                    ["tenant_id", "trader_id", "received_at"])
    op.create_index("ix_complaints_tenant_id_status_received_at", "complaints",
                    ["tenant_id", "status", "received_at"])


def downgrade() -> None:
    """Drop them again (the casework records with them)."""
    for index, table in (("ix_complaints_tenant_id_status_received_at", "complaints"),
                         ("ix_complaints_tenant_id_trader_id_received_at", "complaints"),
                         ("ix_statements_tenant_id_trader_id_created_at", "statements"),
                         ("ix_traders_tenant_id_state", "traders"),
                         ("ix_reviews_tenant_id_trader_id_decided_at", "reviews"),
                         ("ix_documents_tenant_id_trader_id_uploaded_at", "documents")):
        op.drop_index(index, table_name=table)
    for table in ("complaints", "statements", "reviews", "document_blobs", "documents", "staff"):
        op.drop_table(table)
    with op.batch_alter_table("traders") as batch:
        for column in ("approval_review_id", "reinstated_at", "suspended_at", "correction",
                       "state_changed_at", "state"):
            batch.drop_column(column)
    with op.batch_alter_table("verifications") as batch:
        for column in ("review_id", "settles_verification_id", "source"):
            batch.drop_column(column)
    with op.batch_alter_table("staff_actions") as batch:
        batch.drop_column("staff_id")
    with op.batch_alter_table("ops_sessions") as batch:
        batch.drop_column("staff_id")
        batch.alter_column("client_id", existing_type=sa.String(255), nullable=False)
