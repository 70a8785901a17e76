"""Where batch re-verification keeps its state in Redis and RQ: the one home of these names.

:mod:`trace30.batch` (the runs), :mod:`trace30.jobs` (the job and its lease) and
:mod:`trace30.retention` (the purge, which must find all of it) read every name from here:

- the RQ queue, :func:`queue_name` (the key prefix and ``TRACE30_BATCH_QUEUE``);
- a trader's job id in a run, :func:`job_id` (``reverify-{deployment}-{run}-{trader hash}``,
  also :meth:`RunKeys.job_id`), and back, :func:`job_trader_hash`; the SCAN pattern of a
  deployment's job keys, :func:`job_key_pattern`. RQ keeps a job under ``rq:job:{id}``, outside
  any key prefix, so the id carries the deployment (:func:`deployment_tag`, from the key
  prefix): two deployments sharing a Redis never overwrite, resume or purge each other's jobs;
- a run's keys, :class:`RunKeys`, under the suite's key prefix: ``batch:{run}:meta`` (its
  tenant, when it was made), the hashes keyed by trader id ``batch:{run}:items`` (what to
  verify), ``batch:{run}:results`` and ``batch:{run}:before`` (the verdict before the run), and
  ``batch:{run}:lease:{trader hash}`` (a running job's lease); :meth:`RunKeys.parse` reads a key
  back;
- :func:`scheduler_turn_key`, ``rq:trace30-scheduler:{queue}``: the turn of the workers'
  retry scheduler (:class:`trace30.jobs.RetryScheduler`), next to RQ's own keys;
- :func:`purge_lock_key`, ``purge:{trader hash}`` under the prefix: held by the one
  ``trace30 purge`` deleting that trader while others run;
- :func:`trader_hash`, the pseudonym of a tenant's trader in job ids, lease keys, reports and logs.

This module imports nothing of :mod:`trace30` (every other module of the package may import it).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rq.job import Job

from services.gateway.access import DEFAULT_TENANT
from shared.redis_client import Store

#: Every job id of a re-verification starts so.
JOB_ID_PREFIX = "reverify-"


def trader_hash(trader_id: str, tenant: str) -> str:
    """The pseudonym of a tenant's trader in logs, reports, batch lease keys and RQ job ids.

    The first 16 hex digits of the SHA-256 of ``{tenant}/{trader id}`` (UTF-8; a tenant id has
    no ``/``), or of the trader id alone in the ``default`` tenant, as before tenants existed
    (its jobs, leases and logged hashes keep their names): short enough for a key, long enough
    not to collide among the deployment's traders. The same trader id in two tenants gets two
    hashes, so nothing keyed by it is shared between them.

    >>> trader_hash("boulangerie-martin", "default")
    '956152a67eca11aa'
    >>> trader_hash("boulangerie-martin", "shop-b") != trader_hash("boulangerie-martin", "default")
    True
    """
    name = trader_id if tenant == DEFAULT_TENANT else f"{tenant}/{trader_id}"
    return hashlib.sha256(name.encode()).hexdigest()[:16]


def queue_name(settings: Mapping[str, Any]) -> str:
    """The RQ queue, named after the Redis prefix so that deployments sharing Redis differ.

    >>> queue_name({"REDIS_PREFIX": "trace30:", "BATCH_QUEUE": "reverify"})
    'trace30-reverify'
    """
    return str(settings["REDIS_PREFIX"]).replace(":", "-") + str(settings["BATCH_QUEUE"])


def deployment_tag(prefix: str) -> str:
    """The deployment in RQ job ids: the first 8 hex digits of the SHA-256 of its key prefix
    (``TRACE30_REDIS_PREFIX``).

    RQ names a job's keys by its id alone (``rq:job:{id}``, not under the prefix), and allows
    only letters, digits, ``-`` and ``_`` in it; a digest fits any prefix, has no ``-`` (so the
    id reads back from its ends) and no glob character (so it goes into ``SCAN MATCH`` as is),
    and tells ``trace30:`` from ``trace30-`` where :func:`queue_name`'s spelling cannot.

    >>> deployment_tag("trace30:")
    'e5b25830'
    """
    return hashlib.sha256(prefix.encode()).hexdigest()[:8]


def job_id(run_id: str, tenant: str, trader_id: str, *, prefix: str) -> str:
    """The stable id of the tenant's trader's job in the run of the deployment whose key
    prefix is ``prefix``.

    >>> job_id("r1", "default", "boulangerie-martin", prefix="trace30:")
    'reverify-e5b25830-r1-956152a67eca11aa'
    >>> job_id("r1", "default", "boulangerie-martin", prefix="shop-b:")[:18]
    'reverify-238e2981-'
    """
    return f"{_job_id_base(prefix)}{run_id}-{trader_hash(trader_id, tenant)}"


def _job_id_base(prefix: str) -> str:
    return f"{JOB_ID_PREFIX}{deployment_tag(prefix)}-"


def job_trader_hash(job_id: str, *, prefix: str) -> str | None:
    """The trader hash in a re-verification job id of the deployment of ``prefix``; None if
    ``job_id`` is not one (another deployment's, or another key of RQ's).

    >>> job_trader_hash("reverify-e5b25830-r1-956152a67eca11aa", prefix="trace30:")
    '956152a67eca11aa'
    >>> job_trader_hash("reverify-e5b25830-r1-956152a67eca11aa", prefix="shop-b:") is None
    True
    >>> job_trader_hash("reverify-e5b25830-r1-956152a67eca11aa:dependents",
    ...                 prefix="trace30:") is None
    True
    """
    base = _job_id_base(prefix)
    if not job_id.startswith(base) or ":" in job_id:
        return None
    run, _, hashed = job_id[len(base):].rpartition("-")
    return hashed if run and hashed else None


def job_key_pattern(prefix: str) -> str:
    """The ``SCAN MATCH`` pattern of the RQ job keys of the re-verification jobs of the
    deployment of ``prefix`` (and of RQ's keys next to them, such as ``...:dependents``,
    which :func:`job_trader_hash` turns away).

    >>> job_key_pattern("trace30:")
    'rq:job:reverify-e5b25830-*'
    """
    return glob_escape(Job.redis_job_namespace_prefix + _job_id_base(prefix)) + "*"


def job_id_of_key(key: str) -> str | None:
    """The job id of an RQ job key (``rq:job:{id}``), None for another key.

    >>> job_id_of_key("rq:job:reverify-e5b25830-r1-956152a67eca11aa")
    'reverify-e5b25830-r1-956152a67eca11aa'
    >>> job_id_of_key("trace30:batch:r1:meta") is None
    True
    """
    prefix = Job.redis_job_namespace_prefix
    return key[len(prefix):] if key.startswith(prefix) else None


def scheduler_turn_key(queue: str) -> str:
    """The lock that gives one worker at a time the turn of moving due retries of ``queue``
    (:func:`queue_name`, which names the deployment) back to it.

    >>> scheduler_turn_key("trace30-reverify")
    'rq:trace30-scheduler:trace30-reverify'
    """
    return f"rq:trace30-scheduler:{queue}"


def purge_lock_key(store: Store, hashed: str) -> str:
    """The key a purge holds while it deletes the trader hashed as ``hashed``
    (:func:`trader_hash`), so that two purges running at once never both delete, and both
    report, one trader.

    >>> from unittest.mock import Mock
    >>> purge_lock_key(Store(Mock(), "trace30:"), "956152a67eca11aa")
    'trace30:purge:956152a67eca11aa'
    """
    return store.key("purge", hashed)


def glob_escape(text: str) -> str:
    r"""``text`` with Redis glob characters escaped, to use a key prefix in ``SCAN MATCH``.

    >>> glob_escape("trace30[eu]:*?")
    'trace30\\[eu\\]:\\*\\?'
    """
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


@dataclass(frozen=True)
class BatchKey:
    """A run's key read back by :meth:`RunKeys.parse`: its run, its kind (``meta``, one of
    :meth:`RunKeys.trader_hashes`, or ``lease``) and, for a lease, the trader hash."""

    run_id: str
    kind: str
    trader_hash: str | None = None


class RunKeys:
    """Where a run of ``tenant`` keeps its state in Redis (under the suite's key prefix)."""

    NAMESPACE: ClassVar[str] = "batch"
    META: ClassVar[str] = "meta"
    ITEMS: ClassVar[str] = "items"
    RESULTS: ClassVar[str] = "results"
    BEFORE: ClassVar[str] = "before"
    LEASE: ClassVar[str] = "lease"
    #: The deployment's runs (outside ``batch:``: no run's key), for metrics.
    INDEX: ClassVar[str] = "batch-runs"

    def __init__(self, store: Store, run_id: str, tenant: str) -> None:
        self.store = store
        self.run_id = run_id
        self.tenant = tenant
        self.meta = self._key(self.META)
        self.items = self._key(self.ITEMS)
        self.results = self._key(self.RESULTS)
        self.before = self._key(self.BEFORE)

    def _key(self, *parts: str) -> str:
        return self.store.key(self.NAMESPACE, self.run_id, *parts)

    def lease(self, trader_id: str) -> str:
        """The key of the lease of the trader's running job."""
        return self._key(self.LEASE, trader_hash(trader_id, self.tenant))

    def job_id(self, trader_id: str) -> str:
        """The id of the trader's RQ job in this run (:func:`job_id`, in the store's
        deployment)."""
        return job_id(self.run_id, self.tenant, trader_id, prefix=self.store.prefix)

    @classmethod
    def trader_hashes(cls) -> tuple[str, str, str]:
        """The kinds of the run's hashes whose fields are trader ids (of the run's tenant):
        results, items, before."""
        return cls.RESULTS, cls.ITEMS, cls.BEFORE

    @classmethod
    def index(cls, store: Store) -> str:
        """The hash of the deployment's run ids, each with when it was first queued (seconds
        since the epoch): the gateway's metrics read the runs' progress from it. It names
        runs, never traders."""
        return store.key(cls.INDEX)

    @classmethod
    def pattern(cls, store: Store) -> str:
        """The ``SCAN MATCH`` pattern of every run's keys in ``store``."""
        return glob_escape(store.key(cls.NAMESPACE) + ":") + "*"

    @classmethod
    def parse(cls, store: Store, key: str) -> BatchKey | None:
        """What a key of :meth:`pattern` is, None if it is no key of a run.

        A run id may hold ``:`` (kinds and hashes do not), so the key is read from its end.
        """
        base = store.key(cls.NAMESPACE) + ":"
        if not key.startswith(base):
            return None
        rest = key[len(base):]
        parts = rest.rsplit(":", 2)
        if len(parts) == 3 and parts[1] == cls.LEASE and parts[0]:
            return BatchKey(parts[0], cls.LEASE, parts[2])
        run, _, kind = rest.rpartition(":")
        if run and kind in (cls.META, *cls.trader_hashes()):
            return BatchKey(run, kind)
        return None
