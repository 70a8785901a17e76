"""The follower of a large re-verification run: one pass over every trader still to do.

While ``trace30 reverify`` follows a run it looks every few seconds for jobs that were lost
(a worker died) or failed for good. Printed, for a run of N queued traders (default 100,000,
no worker): the time of one pass through RQ's queue and registries (``batch._alive``, what
the follower does) against fetching and judging every job one by one
(``batch._alive_by_status`` over all of them, the baseline), measured in the same run, and
the time to queue the run.

Run: ``.venv/bin/python bench/batch_follow.py [--traders 100000]`` (needs Redis).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from pathlib import Path

import redis
from rq import Queue

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from shared.config import load  # noqa: E402
from shared.redis_client import connect  # noqa: E402
from trace30 import batch  # noqa: E402
from trace30.jobs import raw_connection  # noqa: E402
from trace30.keys import RunKeys, queue_name  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/0"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traders", type=int, default=100_000)
    count = parser.parse_args().traders
    prefix = f"trace30bench:{uuid.uuid4().hex[:8]}:"
    run_id = f"bench-follow-{uuid.uuid4().hex[:6]}"
    settings = load({}, {"REDIS_URL": REDIS_URL, "REDIS_PREFIX": prefix, "SANDBOX": True})
    store = connect(REDIS_URL, prefix)
    queue = Queue(queue_name(settings), connection=raw_connection(settings))
    traders = [f"trader-{i:07d}" for i in range(count)]
    try:
        started = time.perf_counter()
        queued = batch.enqueue(settings, store, queue, run_id, dict.fromkeys(traders, ""),
                               tenant="default")
        enqueue_s = time.perf_counter() - started
        keys = RunKeys(store, run_id, "default")
        started = time.perf_counter()
        alive = batch._alive(store, queue, keys, run_id, traders)
        registries_s = time.perf_counter() - started
        started = time.perf_counter()
        alive_too = batch._alive_by_status(store, queue, keys, run_id, traders)
        one_by_one_s = time.perf_counter() - started
        assert alive == alive_too == set(traders), "both must find every job waiting"
        print(f"{count} traders queued in {enqueue_s:.1f} s ({queued} jobs)")
        print(f"  one follower pass, every job fetched  {one_by_one_s:7.2f} s   (baseline)")
        print(f"  one follower pass, RQ's registries    {registries_s:7.2f} s")
        print(f"  ratio registries/fetched              {registries_s / one_by_one_s:7.3f}")
    finally:
        r = redis.Redis.from_url(REDIS_URL)
        for pattern in (prefix + "*", f"rq:*{prefix.replace(':', '-')}*",
                        f"rq:job:reverify-{run_id}-*"):
            found = list(r.scan_iter(match=pattern, count=5000))
            for i in range(0, len(found), 5000):
                r.delete(*found[i:i + 5000])
    return 0


if __name__ == "__main__":
    sys.exit(main())
