"""The re-verification job and the worker that runs it (RQ on the suite's Redis).

One job per trader and run, with a stable id (:func:`trace30.keys.job_id`), so that a run
enqueued again does not duplicate work. A run belongs to one tenant (``trace30 reverify
--tenant``, kept in the run's ``meta``): its jobs carry the tenant, the trader hash covers it
(:func:`~trace30.keys.trader_hash`), and the default run id names it, so two tenants' runs
never share a job, a lease or a result, even for the same trader id. A job:

1. does nothing if the run already has the trader's result (a re-run, or a job run twice);
2. holds a lease in Redis, renewed while it works: if its worker dies, the lease lapses and the
   run's follower (:mod:`trace30.batch`) queues the trader again — nothing is lost;
3. re-verifies the trader through the gateway's own code (the VAT, registry and payment
   services over HTTP, so their shared Redis limiters hold the VIES per-member-state cap and the
   registers' rate limits however many workers run), records the evidence and sends the
   gateway's signed ``verdict.changed`` webhook when the verdict changes; its VAT checks ask
   with ``priority: batch``, so a seller signing up meanwhile gets the next free VIES slot;
4. when the trader stays ``pending``, raises :class:`StillPending` so that RQ retries it with
   backoff (``TRACE30_BATCH_RETRY_S``); after the last attempt the pending result is recorded,
   never dropped.

A job runs with the request id and trace of the ``trace30 reverify`` that queued it (its RQ
``meta``, :func:`job_meta`), so its log lines and its calls to the services carry them
(:func:`shared.tracing.background`); the verification it records keeps that request id.

Workers run jobs in their own process (RQ's ``SimpleWorker``), so the gateway's verifier is
built once per worker, not once per job, and without a Flask app
(:func:`services.gateway.wiring.build_verifier`, as the gateway builds its own).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import redis
from rq import Queue, Retry, SimpleWorker, get_current_job
from rq.job import Job
from rq.registry import ScheduledJobRegistry
from rq.utils import current_timestamp

from services.gateway.access import DEFAULT_TENANT
from shared import context, tracing
from shared.redis_client import Store, connect
from trace30.keys import RunKeys, queue_name, scheduler_turn_key, trader_hash

if TYPE_CHECKING:
    from services.gateway.sealing import Sealer
    from services.gateway.verifications import Outcome, Verifier
    from services.gateway.webhooks import WebhookSender

log = logging.getLogger("trace30.batch")


class BatchError(Exception):
    """The batch cannot run as asked; the message says why."""


class StillPending(Exception):  # a signal for RQ's retry, not an error
    """The trader is still pending: RQ tries the job again after a backoff."""


def raw_connection(settings: dict[str, Any]) -> redis.Redis:
    """A Redis connection for RQ (bytes, no decoding), from ``TRACE30_REDIS_URL``."""
    if not settings["REDIS_URL"]:
        raise BatchError("Batch re-verification needs a shared Redis: set TRACE30_REDIS_URL.")
    return redis.Redis.from_url(settings["REDIS_URL"], socket_timeout=30,
                                socket_connect_timeout=5)


def retry_policy(settings: dict[str, Any]) -> Retry:
    """RQ's retry for a trader that stays pending (or a job that fails)."""
    intervals = [int(v) for v in settings["BATCH_RETRY_S"]]  # parsed by shared.config
    return Retry(max=len(intervals), interval=intervals)


@dataclass(frozen=True)
class Gateway:
    """What a worker process needs of the gateway: its settings, store, verifier (with the
    evidence log), webhook sender and the sealer of the batch's stored submissions."""

    settings: dict[str, Any]
    store: Store
    verifier: Verifier
    sender: WebhookSender
    sealer: Sealer

    @classmethod
    def build(cls, settings: dict[str, Any]) -> Gateway:
        """Build it from ``settings`` as the gateway does (and check the evidence log's schema,
        or migrate it with ``TRACE30_MIGRATE_ON_START``, as a gateway starting up does); no
        Flask app."""
        from services.gateway.sealing import Sealer, check_keys
        from services.gateway.wiring import api_clients, build_verifier, build_webhook_sender
        from shared.redis_client import open_store

        store = open_store(settings)
        clients = api_clients(settings)
        verifier = build_verifier(settings, store=store, clients=clients)
        try:
            verifier.evidence.prepare_schema(migrate=settings["MIGRATE_ON_START"],
                                             component="batch worker")
        except BaseException:  # refused to start: release the pools it opened
            verifier.close()
            verifier.evidence.close()
            raise
        return cls(settings, store, verifier,
                   build_webhook_sender(settings, verifier.evidence, clients),
                   Sealer(check_keys(settings["EVIDENCE_SEALING_KEYS"],
                                     sandbox=settings["SANDBOX"])))


_GATEWAY: Gateway | None = None
_GATEWAY_LOCK = threading.Lock()


def _gateway() -> Gateway:
    """The gateway parts of this worker process, built on first use (settings from the env)."""
    global _GATEWAY  # one per process, built lazily in the worker
    with _GATEWAY_LOCK:
        if _GATEWAY is None:
            from shared.config import load

            _GATEWAY = Gateway.build(load())
        return _GATEWAY


@contextmanager
def _lease(store: Store, key: str, lease_s: float) -> Iterator[None]:
    """Hold ``key`` while the block runs, renewing it every third of ``lease_s``."""
    stop = threading.Event()
    store.client.set(key, "1", px=int(lease_s * 1000))

    def renew() -> None:
        while not stop.wait(lease_s / 3):
            try:
                store.client.set(key, "1", px=int(lease_s * 1000))
            except redis.RedisError:
                log.warning("could not renew a batch lease")

    # in the job's context: its warnings carry the job's request id
    thread = threading.Thread(target=contextvars.copy_context().run, args=(renew,),
                              daemon=True, name="batch-lease")
    thread.start()
    try:
        yield
    finally:
        stop.set()
        store.client.delete(key)


#: The keys of a job's ``meta`` that carry the request id and trace of whoever queued it.
META_REQUEST_ID, META_TRACEPARENT = "request_id", "traceparent"


def job_meta() -> dict[str, str]:
    """The ``meta`` of a job queued now: the current request id and trace context (the
    ``trace30 reverify`` run's), for :func:`reverify_trader` to carry on."""
    meta, trace = {}, context.trace()
    if (rid := context.request_id()) is not None:
        meta[META_REQUEST_ID] = rid
    if trace is not None:
        meta[META_TRACEPARENT] = trace.header()
    return meta


def reverify_trader(run_id: str, trader_id: str,
                    tenant: str = DEFAULT_TENANT) -> dict[str, Any]:
    """The job: re-verify one trader of ``tenant`` in run ``run_id`` and record the result.

    ``tenant`` defaults to ``default`` only for jobs queued before tenants existed (they
    carried two arguments); :func:`trace30.batch.enqueue` always passes it. It runs with the
    request id and trace in the job's ``meta`` (:func:`job_meta`; a new id if it has none).
    """
    job = get_current_job()
    meta = job.meta if job is not None else {}
    with tracing.background("reverify_trader", request_id=meta.get(META_REQUEST_ID),
                            parent=context.TraceParent.parse(meta.get(META_TRACEPARENT))):
        return _reverify_trader(run_id, trader_id, tenant)


def _reverify_trader(run_id: str, trader_id: str, tenant: str) -> dict[str, Any]:
    gateway = _gateway()
    settings, store, verifier = gateway.settings, gateway.store, gateway.verifier
    keys = RunKeys(store, run_id, tenant)
    if store.client.hexists(keys.results, trader_id):
        return {"trader_id": trader_id, "skipped": True}
    item = store.client.hget(keys.items, trader_id)
    wait_s = settings["GATEWAY_DEADLINE_S"] + 5
    with _lease(store, keys.lease(trader_id), settings["BATCH_LEASE_S"]):
        current = verifier.evidence.current(trader_id, tenant=tenant)
        # The verdict before the run, kept from the first attempt: a retry finds "pending".
        # (The current verification is a settled one: it has a verdict.)
        store.client.hsetnx(keys.before, trader_id, (current.verdict or "") if current else "")
        store.client.expire(keys.before, settings["BATCH_RESULT_TTL_S"])
        before = store.client.hget(keys.before, trader_id) or None
        client_id = current.client_id if current else "batch"
        outcome: Outcome | None
        if item:
            outcome = verifier.submit(gateway.sealer.unseal(str(item)), client_id,
                                      tenant=tenant, wait_s=wait_s, force=True,
                                      priority="batch", request_id=context.request_id())
        else:
            outcome = verifier.reverify(trader_id, client_id, tenant=tenant, wait_s=wait_s,
                                        priority="batch", request_id=context.request_id())
        if outcome is None:
            return _record(keys, trader_id, {"status": "not_found", "before": before,
                                             "after": None, "changed": False})
        result = outcome.result
        after = result.get("verdict") or "pending"
        job = get_current_job()
        if after == "pending" and job is not None and job.retries_left:
            log.info("trader still pending; retried later",
                     extra={"trader": trader_hash(trader_id, tenant), "tenant": tenant,
                            "run": run_id})
            raise StillPending(trader_hash(trader_id, tenant))
        return _record(keys, trader_id, {
            "status": "pending" if after == "pending" else "done",
            "before": before, "after": after, "changed": before is not None and before != after,
            "verification_id": result.get("id"),
            "reasons": [r["code"] for r in result.get("reasons") or []],
        })


def _record(keys: RunKeys, trader_id: str, entry: dict[str, Any]) -> dict[str, Any]:
    entry = {"trader_id": trader_id, "finished_at": datetime.now(UTC).isoformat(), **entry}
    keys.store.client.hset(keys.results, trader_id, json.dumps(entry))
    return entry


#: How long one process holds the turn of moving due retries to the queue, seconds.
TURN_S = 2.0


class RetryScheduler(threading.Thread):
    """Moves jobs whose retry is due from RQ's scheduled registry back to the queue.

    RQ's own scheduler lives in one worker and, if that worker is killed, another takes over
    only after about two minutes; this one runs in every worker under a 2-second Redis lock, so
    retries go on within seconds of a worker's death.
    """

    def __init__(self, queue: Queue, poll_s: float = 0.5) -> None:
        super().__init__(name="batch-retries", daemon=True)
        self.queue = queue
        self.poll_s = poll_s
        self._stop_event = threading.Event()
        self._lock_key = scheduler_turn_key(queue.name)

    def run(self) -> None:
        while not self._stop_event.wait(self.poll_s):
            try:
                self.run_once()
            except redis.RedisError:
                log.warning("could not move due retries to the queue")

    def run_once(self) -> int:
        """Queue every due retry; return how many (0 if another process holds the turn).

        The turn is a Redis lock with a token (redis-py's ``Lock``): a pass that outlives its
        2 s never releases the turn another process has taken since. Jobs go back through RQ's
        public ``Queue.enqueue_job``.
        """
        conn = self.queue.connection
        turn = conn.lock(self._lock_key, timeout=TURN_S, blocking=False)
        if not turn.acquire():
            return 0
        try:
            registry = ScheduledJobRegistry(queue=self.queue)
            job_ids = registry.get_jobs_to_schedule(current_timestamp())
            if not job_ids:
                return 0
            with conn.pipeline() as pipe:
                for job in Job.fetch_many(job_ids, connection=conn):
                    if job is not None:
                        self.queue.enqueue_job(job, pipeline=pipe)
                for jid in job_ids:
                    registry.remove(jid, pipeline=pipe)
                pipe.execute()
            return len(job_ids)
        finally:
            with contextlib.suppress(redis.exceptions.LockError):
                turn.release()  # not ours any more if the pass outlived the turn: left alone

    def stop(self) -> None:
        """End the loop."""
        self._stop_event.set()


def run_worker(settings: dict[str, Any], *, burst: bool = False) -> None:
    """Work the re-verification queue until stopped (or, with ``burst``, until it is empty)."""
    from services.gateway.webhooks import WebhookWorker
    from shared import logs

    conn = raw_connection(settings)
    connect(settings["REDIS_URL"], settings["REDIS_PREFIX"]).ping()
    logs.configure("worker", settings["LOG_LEVEL"])
    tracing.configure(settings, "worker")
    gateway = _gateway()
    # Deliver the verdict.changed webhooks of this worker's jobs from here too (the outbox is
    # shared and leased, so gateway processes and workers never send one twice).
    sender = WebhookWorker(gateway.sender, poll_s=settings["WEBHOOK_POLL_S"])
    sender.start()
    queue = Queue(queue_name(settings), connection=conn)
    retries = RetryScheduler(queue)
    retries.start()
    try:
        SimpleWorker([queue], connection=conn).work(burst=burst, with_scheduler=False,
                                                     logging_level=settings["LOG_LEVEL"])
    finally:
        retries.stop()
        sender.stop()
        tracing.shutdown()  # export the spans still buffered
