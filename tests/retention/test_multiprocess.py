"""``trace30 purge`` run by two processes at once, on SQLite and PostgreSQL, with Redis.

Two tenants' traders are seeded straight into the evidence log (two verifications, a webhook
with an attempt, the staff action that ended the relationship) and into Redis (a cached
verdict, a batch run's result and lease, an RQ job): twelve ended in each tenant long ago, and
traders that stay (relationship ongoing, ended a month ago, or the same id in the other tenant
still trading). Two spawned processes purge together: each ended trader is purged by exactly
one of them, their counts add up to what was seeded, and nothing of the others is touched.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from rq import Queue

from services.gateway.cache import CacheKeys
from services.gateway.evidence import EvidenceLog
from shared.config import load
from shared.redis_client import Store
from tests.conftest import REDIS_URL
from tests.gateway.evidence_fixtures import SEALING_KEYS, T0, make_record
from tests.multiprocess import together
from tests.retention.purgers import purge_when_all_ready
from trace30.keys import RunKeys, purge_lock_key, queue_name, trader_hash
from trace30.retention import REDIS_KINDS, SQL_TABLES, purge

ENDED = 12  # per tenant
#: What the purge deletes of each ended trader.
SQL_PER_TRADER = {**dict.fromkeys(SQL_TABLES, 0), "webhook_attempts": 1,
                  "webhook_deliveries": 1, "staff_actions": 1, "traders": 1, "verifications": 2}
REDIS_PER_TRADER = {**dict.fromkeys(REDIS_KINDS, 0), "gateway:verdict": 1, "batch:results": 1,
                    "batch:lease": 1, "rq:jobs": 1}


def seed_trader(log: EvidenceLog, store: Store, queue: Queue, tenant: str, trader_id: str,
                ended_days_ago: int | None) -> None:
    vids = [f"{tenant}-{trader_id}-{n}" for n in (1, 2)]
    for n, vid in enumerate(vids):
        log.save(make_record(vid, trader_id, tenant_id=tenant,
                             created_at=T0 + timedelta(days=n)))
    delivery = log.enqueue_webhook(client_id="shop", url="https://receiver.example/hook",
                                   event="verdict.changed", payload={}, verification_id=vids[1],
                                   trader_id=trader_id, tenant=tenant)
    log.record_attempt(delivery, status_code=500, error=None, duration_ms=1.0, delivered=False,
                       next_attempt_at=None)
    if ended_days_ago is not None:
        assert log.end_relationship(trader_id,
                                    datetime.now(UTC) - timedelta(days=ended_days_ago),
                                    actor="staff", tenant=tenant)
    store.client.set(CacheKeys(store).verdict(f"fp-{vids[0]}"), "{}")
    run = RunKeys(store, f"run-{tenant}", tenant)
    store.client.hset(run.meta, "tenant", tenant)
    store.client.hset(run.results, trader_id, "{}")
    store.client.set(run.lease(trader_id), "1")
    queue.enqueue("trace30.jobs.reverify_trader", run.run_id, trader_id, tenant,
                  job_id=run.job_id(trader_id))


def left_of(log: EvidenceLog, store: Store, queue: Queue, tenant: str,
            trader_id: str) -> dict[str, Any]:
    """What is left of the trader, in SQL and in Redis."""
    run = RunKeys(store, f"run-{tenant}", tenant)
    history = log.history(trader_id, tenant=tenant)
    return {
        "verifications": len(history),
        "deliveries": sum(len(log.deliveries(r.id)) for r in history),
        "actions": len(log.actions(trader_id, tenant=tenant)),
        "verdict": store.client.exists(CacheKeys(store).verdict(f"fp-{tenant}-{trader_id}-1")),
        "result": store.client.hexists(run.results, trader_id),
        "lease": store.client.exists(run.lease(trader_id)),
        "job": run.job_id(trader_id) in queue.get_job_ids(),
    }


@pytest.fixture
def rq_queue(store: Store) -> Iterator[Queue]:
    conn = redis.Redis.from_url(REDIS_URL)
    settings = load({}, {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": store.prefix, "SANDBOX": True})
    queue = Queue(queue_name(settings), connection=conn)
    yield queue
    for job_id in queue.get_job_ids():
        conn.delete(f"rq:job:{job_id}")
    queue.delete(delete_jobs=True)
    conn.close()


@pytest.mark.slow  # processes of its own
def test_two_purges_at_once_purge_each_ended_trader_once(
        database_url: str, evidence_log: EvidenceLog, store: Store, rq_queue: Queue) -> None:
    ended = [(t, f"{t}-gone-{i}") for t in ("default", "shop-b") for i in range(ENDED)]
    # Kept: ongoing, ended a month ago, and shop-b's traders with default's ended ids.
    kept = ([("default", f"default-active-{i}") for i in range(3)]
            + [("default", f"default-recent-{i}") for i in range(3)]
            + [("shop-b", tid) for t, tid in ended if t == "default"])
    for tenant, trader_id in ended:
        seed_trader(evidence_log, store, rq_queue, tenant, trader_id, 400)
    for tenant, trader_id in kept:
        recent = 30 if "recent" in trader_id else None
        seed_trader(evidence_log, store, rq_queue, tenant, trader_id, recent)
    kept_before = {k: left_of(evidence_log, store, rq_queue, *k) for k in kept}
    assert all(all(v) for v in kept_before.values()), kept_before

    overrides = {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                 "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
                 "REDIS_PREFIX": store.prefix}
    reports = together(purge_when_all_ready, [(overrides, 6)] * 2)

    # Each ended trader is in exactly one report, with exactly its own rows and entries.
    purged = Counter(h for r in reports for h in r["traders"])
    assert [h for h, n in purged.items() if n > 1] == []
    assert set(purged) == {trader_hash(tid, t) for t, tid in ended}
    for r in reports:
        for hashed, counts in r["by_trader"].items():
            assert counts == {"sql": SQL_PER_TRADER, "redis": REDIS_PER_TRADER}, hashed
    # The counts of the two add up to what was seeded.
    for table in SQL_TABLES:
        assert sum(r["sql"][table] for r in reports) == SQL_PER_TRADER[table] * len(ended)
    for kind in REDIS_KINDS:
        assert sum(r["redis"][kind] for r in reports) == REDIS_PER_TRADER[kind] * len(ended)

    gone = {"verifications": 0, "deliveries": 0, "actions": 0, "verdict": 0, "result": False,
            "lease": 0, "job": False}
    for tenant, trader_id in ended:
        assert left_of(evidence_log, store, rq_queue, tenant, trader_id) == gone
    for key in kept:
        assert left_of(evidence_log, store, rq_queue, *key) == kept_before[key], key


def test_a_trader_another_purge_holds_or_has_purged_is_left_to_it(
        database_url: str, evidence_log: EvidenceLog, store: Store, rq_queue: Queue,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The two ways a purge meets another: the trader's lock is held (it is skipped, left
    whole for the holder), or it was purged between this purge's listing and its turn (it is
    not reported)."""
    for trader_id in ("held", "raced", "mine"):
        seed_trader(evidence_log, store, rq_queue, "default", trader_id, 400)
    settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                         "DATABASE_URL": database_url, "REDIS_URL": REDIS_URL,
                         "REDIS_PREFIX": store.prefix})
    held = store.client.lock(purge_lock_key(store, trader_hash("held", "default")), timeout=60)
    assert held.acquire(blocking=False)
    before = left_of(evidence_log, store, rq_queue, "default", "held")
    real_keys = EvidenceLog.verification_keys

    def keys_after_another_purge(self: EvidenceLog, traders: Any) -> Any:
        if ("default", "raced") in traders:  # another purge got there first
            evidence_log.purge_trader("raced", tenant="default")
        return real_keys(self, traders)

    monkeypatch.setattr(EvidenceLog, "verification_keys", keys_after_another_purge)
    report = purge(settings, retention_months=6, dry_run=False)
    assert report.traders == [trader_hash("mine", "default")]
    assert report.sql == SQL_PER_TRADER
    assert left_of(evidence_log, store, rq_queue, "default", "held") == before
    held.release()
    again = purge(settings, retention_months=6, dry_run=False)
    assert again.traders == [trader_hash("held", "default")]
    assert not store.client.exists(purge_lock_key(store, trader_hash("held", "default")))
