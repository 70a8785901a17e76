"""The evidence log's PostgreSQL pool: connections idle a while are pinged before use, so a
server that closed them (restart, idle timeout) costs no request; recent ones are not (a round
trip saved on every transaction), and if one of those is dead its request fails once and the
pool is renewed."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from services.gateway.evidence import EvidenceLog, db
from tests.gateway.evidence_fixtures import SEALING_KEYS, make_record, pg_schema, schema_url


def _kill_other_backends(log: EvidenceLog) -> int:
    """Close, server side, every connection of the log's pool (as a restart would)."""
    with log.engine.connect() as conn:
        pids = [p for (p,) in conn.execute(sa.text("SELECT pid FROM pg_stat_activity WHERE "
                                                   "application_name = 'trace30-test-pool'"))]
        mine = conn.execute(sa.text("SELECT pg_backend_pid()")).scalar()
    admin = sa.create_engine(log.engine.url)
    with admin.connect() as conn:
        for pid in pids:
            conn.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
    admin.dispose()
    return len([p for p in pids if p != mine]) + (mine in pids)


@pytest.fixture
def log():
    with pg_schema() as schema:
        url = schema_url(schema).replace("?options=", "?application_name=trace30-test-pool"
                                                      "&options=")
        evidence = EvidenceLog(url, SEALING_KEYS, chain=False)
        evidence.migrate()
        yield evidence
        evidence.close()


def test_an_idle_connection_closed_by_the_server_is_replaced_before_use(
        log: EvidenceLog, monkeypatch: pytest.MonkeyPatch):
    log.save(make_record("v-1"))
    assert _kill_other_backends(log) >= 1
    monkeypatch.setattr(db, "PING_AFTER_IDLE_S", 0.0)  # every pooled connection counts as idle
    log.save(make_record("v-2"))  # the dead one is pinged, dropped, and a new one is used
    assert log.get("v-2") is not None


def test_a_recent_connection_is_not_pinged_and_a_dead_one_fails_once(log: EvidenceLog):
    log.save(make_record("v-1"))
    _kill_other_backends(log)
    with pytest.raises(sa.exc.OperationalError):  # not pinged; answered 503 by the gateway
        log.get("v-1")
    assert log.get("v-1") is not None  # the pool was renewed
