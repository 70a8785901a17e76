"""The Alembic environment of the evidence log.

:meth:`services.gateway.evidence.EvidenceLog.migrate` runs it with its own connection in
``config.attributes["connection"]`` (inside the transaction that holds the migration lock).
Without one it connects to the ``sqlalchemy.url`` option, or to ``TRACE30_DATABASE_URL``, so an
operator can also run ``alembic`` by hand with a config that sets
``script_location = services/gateway/migrations``. Offline mode (``--sql``) prints the SQL.

Importing this module outside Alembic does nothing (pytest imports every module for doctests).
"""

from __future__ import annotations

import os

import sqlalchemy as sa
from alembic import context

from services.gateway.evidence import build_engine, metadata


def _database_url() -> str:
    url = context.config.get_main_option("sqlalchemy.url") or os.environ.get(
        "TRACE30_DATABASE_URL"
    )
    if not url:
        raise RuntimeError("set sqlalchemy.url or TRACE30_DATABASE_URL to run the migrations")
    return url


def run_with(connection: sa.Connection) -> None:
    """Run the migrations on ``connection`` (in the caller's transaction, if one is open)."""
    context.configure(connection=connection, target_metadata=metadata)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Run the migrations on the connection handed in, or on one of our own."""
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_with(connection)
        return
    engine = build_engine(_database_url())
    try:
        with engine.connect() as own:
            run_with(own)
            own.commit()
    finally:
        engine.dispose()


def run_offline() -> None:
    """Print the migrations' SQL for the URL's dialect instead of running them."""
    context.configure(url=_database_url(), target_metadata=metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def _under_alembic() -> bool:
    try:
        context.is_offline_mode()
    except NameError:  # alembic's proxy is only set while a command runs
        return False
    return True


if _under_alembic():
    if context.is_offline_mode():
        run_offline()
    else:
        run_online()
