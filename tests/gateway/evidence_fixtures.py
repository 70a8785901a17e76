"""Fixtures of the evidence log tests: one database per test, on SQLite and on PostgreSQL.

Import them explicitly where needed (``from tests.gateway.evidence_fixtures import
database_url, evidence_log``). ``database_url`` is parametrised: a SQLite file under the test's
``tmp_path``, and a fresh schema ``t_<random>`` on the PostgreSQL server (chosen with the
connection's ``search_path``, dropped with everything in it afterwards). ``evidence_log`` is an
:class:`EvidenceLog` on it, migrated.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from cryptography.fernet import Fernet
from sqlalchemy.pool import NullPool

from services.gateway.evidence import EvidenceLog, VerificationRecord

PG_URL = os.environ.get(
    "TRACE30_TEST_DATABASE_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
#: Sealing keys of the tests (made per session: nothing depends on their value).
SEALING_KEYS = Fernet.generate_key().decode()

BACKENDS = ["sqlite", "postgresql"]


def schema_url(schema: str) -> str:
    """The PostgreSQL URL whose connections work in ``schema``."""
    return f"{PG_URL}?options=-csearch_path%3D{schema}"


@contextmanager
def pg_schema() -> Iterator[str]:
    """A PostgreSQL schema of the caller's own (its name), dropped with all it holds after."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(PG_URL, poolclass=NullPool)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
        yield schema
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database of this test's own, as a URL (SQLite file or PostgreSQL schema)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'evidence.sqlite3'}"
        return
    with pg_schema() as schema:
        yield schema_url(schema)


@pytest.fixture
def evidence_log(database_url: str) -> Iterator[EvidenceLog]:
    """A migrated :class:`EvidenceLog` on this test's database."""
    log = EvidenceLog(database_url, SEALING_KEYS)
    log.migrate()
    yield log
    log.close()


T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)


def make_record(vid: str, trader_id: str = "trader-1", **changes: object) -> VerificationRecord:
    """A settled ``verified`` verification made at :data:`T0`; ``changes`` override fields."""
    values: dict[str, object] = {
        "id": vid,
        "trader_id": trader_id,
        "client_id": "shop",
        "fingerprint": "fp-" + vid,
        "state": "settled",
        "verdict": "verified",
        "items": {"a": "ok", "b": "ok", "c": "ok", "d": "ok", "e": "ok"},
        "reasons": [],
        "checks": {"vat": {"status": "valid"}},
        "name_consistency": {"score": 0.97},
        "evidence": {"vies_consultation_number": "WAPIAAAAW1a2b3c4"},
        "submission": {"trader_id": trader_id, "payment": {"iban": "DE89 **** 3000"}},
        "account_fingerprint": "acct-" + trader_id,
        "request_id": "req-" + vid,
        "created_at": T0,
        "settled_at": T0,
        "checked_at": T0,
        "expires_at": None,
    }
    values.update(changes)
    return VerificationRecord(**values)  # type: ignore[arg-type]
