"""``RetryScheduler``: due retries go back to the queue through RQ's public API, one process at a
time, and a pass never releases a turn another process has taken since."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import redis
from rq import Queue
from rq.registry import ScheduledJobRegistry

from tests.conftest import REDIS_URL
from trace30.jobs import RetryScheduler
from trace30.keys import scheduler_turn_key


@pytest.fixture
def queue() -> Iterator[Queue]:
    conn = redis.Redis.from_url(REDIS_URL)
    queue = Queue(f"trace30test-sched-{uuid.uuid4().hex[:10]}", connection=conn)
    yield queue
    for key in conn.scan_iter(match=f"rq:*{queue.name}*", count=1000):
        conn.delete(key)
    for job_id in ("due-retry",):
        conn.delete(f"rq:job:{job_id}")
    conn.close()


def schedule_now(queue: Queue) -> None:
    """A job whose retry is due, as RQ leaves it in the scheduled registry."""
    queue.enqueue_in(timedelta(seconds=0), "trace30.jobs.reverify_trader", "run", "trader",
                     job_id="due-retry")
    assert "due-retry" in ScheduledJobRegistry(queue=queue).get_job_ids()


def test_a_due_retry_goes_back_to_the_queue(queue: Queue) -> None:
    schedule_now(queue)
    assert RetryScheduler(queue).run_once() == 1
    assert queue.get_job_ids() == ["due-retry"]
    assert ScheduledJobRegistry(queue=queue).get_job_ids() == []
    assert not queue.connection.exists(scheduler_turn_key(queue.name))  # turn released


def test_another_process_holding_the_turn_is_waited_for(queue: Queue) -> None:
    schedule_now(queue)
    key = scheduler_turn_key(queue.name)
    queue.connection.set(key, "other-process", px=2000)
    assert RetryScheduler(queue).run_once() == 0
    assert queue.get_job_ids() == []
    assert queue.connection.get(key) == b"other-process"


def test_a_pass_that_outlived_its_turn_leaves_the_next_holder_alone(
        queue: Queue, monkeypatch: pytest.MonkeyPatch) -> None:
    """The turn lapsed during the pass and another process took it: finishing must not delete
    that process's turn (it used to delete the key whoever held it)."""
    schedule_now(queue)
    key = scheduler_turn_key(queue.name)
    real = ScheduledJobRegistry.get_jobs_to_schedule

    def slow(self: ScheduledJobRegistry, *args: Any, **kwargs: Any) -> list[str]:
        queue.connection.set(key, "next-holder", px=2000)  # our turn lapsed; another took it
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ScheduledJobRegistry, "get_jobs_to_schedule", slow)
    assert RetryScheduler(queue).run_once() == 1
    assert queue.connection.get(key) == b"next-holder"
