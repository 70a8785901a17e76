"""The gateway's scrape-time gauges (:func:`shared.metrics.add_collector`): what waits in the
evidence log and in Redis, read when Prometheus scrapes rather than counted as it happens, so
every gateway process reports the same truth and a restart loses nothing.

- :class:`EvidenceGauges`: the ``pending`` verifications the sweepers will retry, those running,
  and the webhook outbox (two indexed counts: ``(verdict, next_retry_at)`` and
  ``(status, next_attempt_at)``);
- :class:`QueueGauges`: the RQ queue of re-verification jobs (its list and registries, by the
  names :mod:`trace30.keys` and RQ give them) and the progress of the latest batch runs
  (:meth:`trace30.keys.RunKeys.index`).

Each is a few queries whatever the size of the log (no row is read), safe to scrape every 15 s.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from rq import Queue
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from services.gateway.evidence import EvidenceLog
from shared.metrics import label
from shared.redis_client import Store
from trace30.keys import RunKeys, queue_name

log = logging.getLogger(__name__)

#: The batch runs reported, the most recent first.
MAX_RUNS = 10


def _overdue_s(first_due_at: datetime | None, now: datetime) -> float:
    """Seconds since the first row became due; 0 when none is due yet."""
    if first_due_at is None:
        return 0.0
    return max(0.0, (now - first_due_at).total_seconds())


class EvidenceGauges:
    """The evidence log's backlogs."""

    name = "evidence"

    def __init__(self, evidence: EvidenceLog,
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.evidence = evidence
        self.now = now

    def collect(self) -> Iterator[Metric]:
        """Read the backlogs now."""
        now = self.now()
        pending = self.evidence.pending_backlog()
        outbox = self.evidence.outbox_backlog()
        running = self.evidence.running_count()
        yield GaugeMetricFamily(
            "trace30_verifications_pending",
            "Verifications with a pending verdict, waiting for the sweepers to retry them.",
            value=pending.count)
        yield GaugeMetricFamily(
            "trace30_verifications_pending_overdue_seconds",
            "How long the earliest due pending verification has waited past its retry time.",
            value=_overdue_s(pending.first_due_at, now))
        yield GaugeMetricFamily(
            "trace30_verifications_running",
            "Verifications running now (or abandoned, until a sweeper takes them over).",
            value=running)
        yield GaugeMetricFamily(
            "trace30_webhook_outbox_depth", "Webhooks in the outbox still to be delivered.",
            value=outbox.count)
        yield GaugeMetricFamily(
            "trace30_webhook_outbox_overdue_seconds",
            "How long the earliest due webhook has waited past its attempt time.",
            value=_overdue_s(outbox.first_due_at, now))


class QueueGauges:
    """The RQ queue of re-verification jobs and the latest batch runs."""

    name = "batch"

    def __init__(self, store: Store, settings: Mapping[str, Any],
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.queue = queue_name(settings)
        self.ttl_s = int(settings["BATCH_RESULT_TTL_S"])
        self.clock = clock
        # Only their key names are used (RQ's own spelling): nothing is sent here.
        q = Queue(self.queue, connection=store.client)
        self.states = {
            "queued": ("list", q.key),
            "started": ("zset", StartedJobRegistry(self.queue, connection=store.client).key),
            "scheduled": ("zset", ScheduledJobRegistry(self.queue, connection=store.client).key),
            "deferred": ("zset", DeferredJobRegistry(self.queue, connection=store.client).key),
            "failed": ("zset", FailedJobRegistry(self.queue, connection=store.client).key),
        }

    def collect(self) -> Iterator[Metric]:
        """Read the queue and the runs now (two round trips)."""
        client = self.store.client
        index = RunKeys.index(self.store)
        pipe = client.pipeline(transaction=False)
        for kind, key in self.states.values():
            if kind == "list":
                pipe.llen(key)
            else:
                pipe.zcard(key)
        pipe.hgetall(index)
        *counts, index_runs = pipe.execute()
        since = self.clock() - self.ttl_s
        started: dict[str, float] = {}
        for run, at in index_runs.items():
            try:
                when = float(at)
            except (TypeError, ValueError):  # one bad entry must not hide the rest
                log.warning("batch run index: an entry without a start time skipped")
                continue
            # a run id a label cannot carry would be "other", and two such samples would make
            # Prometheus refuse the whole scrape
            if when >= since and label(run) == run:
                started[run] = when
        runs = sorted(started, key=started.__getitem__, reverse=True)[:MAX_RUNS]
        jobs = GaugeMetricFamily("trace30_rq_jobs",
                                 "Re-verification jobs in the RQ queue and its registries.",
                                 labels=["queue", "state"])
        for state, count in zip(self.states, counts, strict=True):
            jobs.add_metric([self.queue, state], int(count))
        yield jobs
        traders = GaugeMetricFamily("trace30_batch_run_traders",
                                    "Traders a recent batch run re-verifies.", labels=["run"])
        done = GaugeMetricFamily("trace30_batch_run_done",
                                 "Traders of a recent batch run with a result.", labels=["run"])
        if runs:
            pipe = client.pipeline(transaction=False)
            for run in runs:
                keys = RunKeys(self.store, run, "")
                pipe.hlen(keys.items)
                pipe.hlen(keys.results)
            sizes = pipe.execute()
            for i, run in enumerate(runs):
                total, finished = int(sizes[2 * i]), int(sizes[2 * i + 1])
                if total:  # an expired run has no items left
                    traders.add_metric([label(run)], total)
                    done.add_metric([label(run)], finished)
        yield traders
        yield done
