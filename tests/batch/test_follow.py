"""What the run's follower sees of each job, from RQ's queue and registries: waiting, running
under its lease, lost (its worker died), or failed for good. No worker runs here."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from rq import Queue
from rq.job import JobStatus
from rq.registry import FailedJobRegistry, StartedJobRegistry

from shared.config import load
from shared.redis_client import Store
from tests.conftest import REDIS_URL
from trace30 import batch
from trace30.keys import RunKeys, job_id, queue_name

RUN = f"run-follow-{uuid.uuid4().hex[:8]}"  # RQ job ids are not under the test's prefix
TRADERS = [f"trader-{i}" for i in range(6)]


def job_of(queue: Queue, trader_id: str) -> str:
    """The job id of a trader of the default tenant in the run (the queue's deployment)."""
    return job_id(RUN, "default", trader_id, prefix=queue.settings["REDIS_PREFIX"])


@pytest.fixture
def queue(store: Store) -> Queue:
    settings = load({}, {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": store.prefix, "SANDBOX": True})
    queue = Queue(queue_name(settings), connection=redis.Redis.from_url(REDIS_URL))
    assert batch.enqueue(settings, store, queue, RUN, dict.fromkeys(TRADERS, ""),
                         tenant="default") == 6
    queue.settings = settings  # type: ignore[attr-defined]
    yield queue
    queue.delete(delete_jobs=True)
    for registry in (StartedJobRegistry(queue=queue), FailedJobRegistry(queue=queue)):
        queue.connection.delete(registry.key)
    for trader_id in TRADERS:
        queue.connection.delete(f"rq:job:{job_of(queue, trader_id)}")


def start(queue: Queue, trader_id: str) -> None:
    """What a worker does when it takes the trader's job (without running it)."""
    job = queue.fetch_job(job_of(queue, trader_id))
    queue.remove(job.id)
    job.set_status(JobStatus.STARTED)
    # RQ 2 registers an execution, "job id:execution id", as a worker does
    queue.connection.zadd(StartedJobRegistry(queue=queue).key,
                          {f"{job.id}:execution-1": time.time() + 600})


def test_queued_and_leased_jobs_are_alive_a_started_one_without_lease_is_lost(
        store: Store, queue: Queue) -> None:
    keys = RunKeys(store, RUN, "default")
    start(queue, "trader-0")
    store.client.set(keys.lease("trader-0"), "1", px=60_000)  # its worker is alive
    start(queue, "trader-1")  # its worker died: no lease
    assert batch._alive(store, queue, keys, RUN, TRADERS) == set(TRADERS) - {"trader-1"}
    # the follower's pass queues the lost one again, and only that one
    assert batch.enqueue(queue.settings, store, queue, RUN, {}, tenant="default") == 1
    assert job_of(queue, "trader-1") in queue.get_job_ids()


def test_a_job_between_queue_and_started_registry_is_not_taken_for_lost(
        store: Store, queue: Queue) -> None:
    """The worker popped it from the queue and has not registered it yet: its status still
    says queued, so the follower does not queue it twice."""
    queue.remove(job_of(queue, "trader-2"))  # popped, not yet in the started registry
    assert "trader-2" in batch._alive(store, queue, RunKeys(store, RUN, "default"), RUN, TRADERS)


def test_failed_for_good_comes_from_the_failed_registry(store: Store, queue: Queue) -> None:
    job = queue.fetch_job(job_of(queue, "trader-3"))
    queue.remove(job.id)
    job.retries_left = 0
    job.set_status(JobStatus.FAILED)
    job.save()
    FailedJobRegistry(queue=queue).add(job, 600)
    assert batch._failed(queue, RunKeys(store, RUN, "default"), TRADERS) == ["trader-3"]
    job.retries_left = 1  # a retry is still to come: not failed for good
    job.save()
    assert batch._failed(queue, RunKeys(store, RUN, "default"), TRADERS) == []
