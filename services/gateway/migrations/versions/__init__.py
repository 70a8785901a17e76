"""Alembic revisions of the evidence log, one module per revision (Alembic skips this file)."""
