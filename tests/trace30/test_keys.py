"""Two deployments (two ``TRACE30_REDIS_PREFIX``es) on one Redis server: RQ keeps jobs under
``rq:job:{id}``, outside any prefix, so the job ids carry the deployment
(:func:`trace30.keys.job_id`). The same run id and trader in both are two jobs; each
deployment's follower and purge see only their own."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
from rq import Queue
from rq.job import Job

from services.gateway.evidence import EvidenceLog
from shared.config import load
from shared.redis_client import Store
from tests.conftest import REDIS_URL
from tests.gateway.evidence_fixtures import SEALING_KEYS, make_record
from trace30 import batch
from trace30.keys import (
    RunKeys,
    job_id,
    job_id_of_key,
    job_key_pattern,
    job_trader_hash,
    queue_name,
    trader_hash,
)
from trace30.retention import purge

RUN = "20260101-shared-run"  # the same run id in both deployments
TRADERS = ["trader-gone", "trader-stays"]


class Deployment:
    """One deployment's settings, store and queue on the shared Redis, with its own SQLite
    evidence log in which ``trader-gone``'s relationship ended long ago."""

    def __init__(self, prefix: str, path: Path, rq_conn: redis.Redis) -> None:
        url = f"sqlite:///{path / 'evidence.sqlite3'}"
        self.settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                                  "DATABASE_URL": url, "REDIS_URL": REDIS_URL,
                                  "REDIS_PREFIX": prefix})
        self.store = Store(redis.Redis.from_url(REDIS_URL, decode_responses=True), prefix)
        self.queue = Queue(queue_name(self.settings), connection=rq_conn)
        self.keys = RunKeys(self.store, RUN, "default")
        log = EvidenceLog(url, SEALING_KEYS)
        log.migrate()
        try:
            for trader_id in TRADERS:
                log.save(make_record(f"v-{trader_id}", trader_id))
            log.end_relationship("trader-gone", datetime.now(UTC) - timedelta(days=400),
                                 tenant="default")
        finally:
            log.close()

    def job_ids(self) -> list[str]:
        return [self.keys.job_id(t) for t in TRADERS]

    def scanned(self) -> set[str]:
        """The job ids the purge's SCAN finds for this deployment."""
        conn = self.queue.connection
        ids = {job_id_of_key(k.decode()) for k in
               conn.scan_iter(match=job_key_pattern(self.store.prefix), count=1000)}
        return {i for i in ids if i and job_trader_hash(i, prefix=self.store.prefix)}

    def cleanup(self) -> None:
        self.queue.delete(delete_jobs=True)
        for jid in self.job_ids():
            self.queue.connection.delete(f"rq:job:{jid}", f"rq:results:{jid}")
        keys = list(self.store.client.scan_iter(match=self.store.prefix + "*", count=1000))
        if keys:
            self.store.client.delete(*keys)
        self.store.client.close()


@pytest.fixture
def deployments(tmp_path: Path) -> Iterator[tuple[Deployment, Deployment]]:
    rq_conn = redis.Redis.from_url(REDIS_URL)
    tag = uuid.uuid4().hex[:10]
    made: list[Deployment] = []
    try:
        for name in ("a", "b"):
            (tmp_path / name).mkdir()
            made.append(Deployment(f"trace30test:{tag}-{name}:", tmp_path / name, rq_conn))
        yield made[0], made[1]
    finally:
        for d in made:
            d.cleanup()
        rq_conn.close()


def test_job_ids_carry_the_deployment() -> None:
    a = job_id("run", "default", "t1", prefix="trace30:")
    b = job_id("run", "default", "t1", prefix="trace30-eu:")
    assert a != b and a.startswith("reverify-") and b.startswith("reverify-")
    # a prefix that queue_name would spell the same still gets ids of its own
    assert job_id("run", "default", "t1", prefix="trace30-") != a
    assert job_trader_hash(a, prefix="trace30:") == trader_hash("t1", "default")
    assert job_trader_hash(a, prefix="trace30-eu:") is None
    # any prefix gives an id RQ accepts (letters, digits, '-' and '_' only)
    odd = job_id("r", "default", "t1", prefix="odd prefix/[x]*:")
    conn = redis.Redis.from_url(REDIS_URL)
    assert Job.create("trace30.jobs.reverify_trader", id=odd, connection=conn).id == odd
    conn.close()


def test_two_deployments_on_one_redis_keep_their_jobs_apart(
        deployments: tuple[Deployment, Deployment]) -> None:
    a, b = deployments
    items = dict.fromkeys(TRADERS, "")
    assert batch.enqueue(a.settings, a.store, a.queue, RUN, items, tenant="default") == 2
    # The same run id and traders in deployment b: two jobs of its own, a's left as they were.
    assert batch.enqueue(b.settings, b.store, b.queue, RUN, items, tenant="default") == 2
    assert set(a.job_ids()).isdisjoint(b.job_ids())
    for d in (a, b):
        assert sorted(d.queue.get_job_ids()) == sorted(d.job_ids())
        for jid in d.job_ids():
            assert Job.fetch(jid, connection=d.queue.connection).origin == d.queue.name
        # The follower's pass finds its jobs alive (none lost, none queued twice).
        assert batch.enqueue(d.settings, d.store, d.queue, RUN, {}, tenant="default") == 0
        # The purge's scan finds this deployment's jobs, not the other's.
        assert d.scanned() == set(d.job_ids())

    report = purge(a.settings, retention_months=6, dry_run=False)
    assert report.traders == [trader_hash("trader-gone", "default")]
    assert report.redis["rq:jobs"] == 1
    conn = a.queue.connection
    assert not conn.exists(f"rq:job:{a.keys.job_id('trader-gone')}")
    assert conn.exists(f"rq:job:{a.keys.job_id('trader-stays')}")
    # b has not purged: its job of the same trader id is untouched.
    assert sorted(b.queue.get_job_ids()) == sorted(b.job_ids())
    assert conn.exists(f"rq:job:{b.keys.job_id('trader-gone')}")
