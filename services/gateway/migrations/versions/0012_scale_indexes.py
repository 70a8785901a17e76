"""Indexes for an evidence log of millions of traders (issue 14), and ``traders.country``.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-30

- ``verifications (tenant_id, checked_at, trader_id, id)``: the staff dashboard's traders
  list, most recently checked first, paged by keyset (walked from the cursor, never OFFSET;
  the id lets the walk step over past verifications without reading their rows).
- ``traders (tenant_id, current_verdict, current_created_at, trader_id)``: the review queue
  (``needs_review``, the longest waiting first), paged by keyset.
- ``traders.country`` (the country of the current verification's address, filled from the
  stored submissions) and ``traders (tenant_id, updated_at, trader_id)``, ``(tenant_id,
  current_verdict, updated_at, trader_id)``, ``(tenant_id, country, updated_at, trader_id)``:
  ``GET /v1/traders``, in ``updated_at`` order, whole or filtered by verdict or country.

The shared-identifier lookups of a submission (``linked_traders``: the payment account, VAT
number and registration of the tenant's traders) already have their indexes (0002).

Frozen like 0001.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_INDEXES = (
    ("ix_verifications_tenant_id_checked_at_trader_id_id", "verifications",
     ["tenant_id", "checked_at", "trader_id", "id"]),
    ("ix_traders_tenant_id_updated_at_trader_id", "traders",
     ["tenant_id", "updated_at", "trader_id"]),
    ("ix_traders_tenant_id_current_verdict_updated_at_trader_id", "traders",
     ["tenant_id", "current_verdict", "updated_at", "trader_id"]),
    ("ix_traders_tenant_id_country_updated_at_trader_id", "traders",
     ["tenant_id", "country", "updated_at", "trader_id"]),
    ("ix_traders_review_queue", "traders",
     ["tenant_id", "current_verdict", "current_created_at", "trader_id"]),
)

#: ``traders.country`` from the current verification's stored submission, per backend.
_COUNTRY_PG = ("UPDATE traders SET country = (SELECT upper(substr(v.submission -> 'address' "
               "->> 'country_code', 1, 2)) FROM verifications v "
               "WHERE v.id = traders.current_verification_id) "
               "WHERE current_verification_id IS NOT NULL")
_COUNTRY_SQLITE = ("UPDATE traders SET country = (SELECT upper(substr(json_extract("
                   "v.submission, '$.address.country_code'), 1, 2)) FROM verifications v "
                   "WHERE v.id = traders.current_verification_id) "
                   "WHERE current_verification_id IS NOT NULL")


def upgrade() -> None:
    """Add ``traders.country`` (filled from the current verifications), then the indexes."""
    with op.batch_alter_table("traders") as batch:
        batch.add_column(sa.Column("country", sa.String(2)))
    country = {"postgresql": _COUNTRY_PG}.get(op.get_bind().dialect.name, _COUNTRY_SQLITE)
    op.execute(country)
    for name, table, columns in _INDEXES:
        op.create_index(name, table, columns)


def downgrade() -> None:
    """Drop them, and the column."""
    for name, table, _columns in reversed(_INDEXES):
        op.drop_index(name, table_name=table)
    with op.batch_alter_table("traders") as batch:
        batch.drop_column("country")
