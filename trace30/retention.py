"""The retention purge (DSA Art 30(5)): forget traders six months after the relationship ended.

``POST /v1/traders/{id}/end`` records when the platform's relationship with a trader ended;
``trace30 purge`` then deletes everything trace30 holds about every trader whose relationship
ended ``TRACE30_RETENTION_MONTHS`` calendar months ago (6 by default: an end on 31 August is
purged from 28 February on, :mod:`shared.retention`), and ``--dry-run`` only lists it.
It runs over every tenant (the operator purges the whole deployment): a trader is a
``(tenant, trader id)`` pair, and the same trader id in another tenant is another trader, whose
data stays. For each such trader, in this order:

1. Redis, under ``TRACE30_REDIS_PREFIX``: the gateway's cached verdicts and single-flight locks
   (``gateway:verdict:{fingerprint}``, ``gateway:inflight:{fingerprint}``; the fingerprints
   are those of the trader's verifications, which cover the tenant), the results
   published for waiters and their webhook requests (``gateway:result:{verification id}``,
   ``gateway:notify:{verification id}``), the pending-retry claims
   (``gateway:claim:retry:{verification id}:{attempt}``); the batch runs' data of the trader
   (its field in the ``batch:{run}:results``, ``batch:{run}:items`` and ``batch:{run}:before``
   hashes of its tenant's runs, the tenant read from ``batch:{run}:meta``; its
   ``batch:{run}:lease:{trader hash}`` keys); and its RQ re-verification jobs
   (``reverify-{run}-{trader hash}`` on this deployment's queue: the job, its place in the
   queue and in RQ's registries, and its stored results, which name the trader in clear).
2. The SQL evidence log (:meth:`~services.gateway.evidence.EvidenceLog.purge_trader`): its
   verifications, its trader row, its webhook deliveries and their attempts, in one
   transaction.

SQL comes last on purpose: ``ended_before`` reads the trader list from SQL, so a purge that
stops half-way (Redis down, a crash) leaves the trader listed and the next purge finishes it.

The services' own check caches are not searched. Their entries expire long before the
retention period ends: the VAT service keeps an answer 24 hours (7 days as a stale fallback
during a VIES outage), the registry service 24 hours, the payment service's payee checks 24
hours. Six months after a relationship ended none of them is left (this holds as long as
nobody configures those TTLs beyond the retention period). They are keyed by digests of VAT
numbers, register numbers and IBANs, not by trader, so there would be nothing to match on
anyway. Gateway processes may also keep a served verdict in memory for
``TRACE30_GATEWAY_LOCAL_CACHE_TTL_S`` (seconds).

In sandbox without ``TRACE30_REDIS_URL`` the services use an embedded store inside each process:
there is nothing shared to delete, so Redis is skipped and the report says so (outside sandbox
the purge refuses to run without Redis, as the services refuse to start).

Traders appear in the report and the logs only as :func:`trader_hash` (with their tenant, and
counts per tenant), never in clear. The hash is a pseudonym, not anonymisation: whoever knows a
trader id and its tenant can recompute it, which is what lets an operator answer "was trader X
purged?" from the log.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from rq.exceptions import NoSuchJobError
from rq.job import Job
from rq.results import Result

from services.gateway import sealing
from services.gateway.access import DEFAULT_TENANT
from services.gateway.evidence import (
    EvidenceLog,
    staff_actions_table,
    traders_table,
    verifications_table,
    webhook_attempts_table,
    webhook_deliveries_table,
)
from shared.redis_client import Store, connect
from shared.retention import purge_cutoff

log = logging.getLogger("trace30.retention")

#: SQL tables in the order :meth:`EvidenceLog.purge_trader` reports them.
SQL_TABLES = ("webhook_attempts", "webhook_deliveries", "staff_actions", "traders", "verifications")

#: What is counted in Redis: keys, except ``batch:results``, ``batch:items`` and
#: ``batch:before`` (hash fields)
#: and ``rq:jobs`` (jobs, each with its queue and registry entries).
REDIS_KINDS = (
    "gateway:verdict", "gateway:inflight", "gateway:result", "gateway:notify", "gateway:claim",
    "batch:results", "batch:items", "batch:before", "batch:lease", "rq:jobs", "rq:results",
)  # fmt: skip

NO_REDIS = ("not searched: TRACE30_REDIS_URL is not set (the embedded store lives inside each "
            "process: nothing shared to delete)")

_JOB_KEY_PREFIX = "rq:job:"
_JOB_ID_PREFIX = "reverify-"


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


class PurgeError(Exception):
    """The purge stopped at one trader; ``report`` holds what was done before it.

    The message names the trader by its hash and the error by its type only, because database
    errors quote the statement's parameters (the trader id). The original exception is kept as
    ``__context__`` for a debugger, not printed.
    """

    def __init__(self, message: str, report: PurgeReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass
class PurgeReport:
    """What a purge deleted (or, with ``dry_run``, would delete); traders only as hashes."""

    cutoff: datetime
    dry_run: bool
    #: hashes of the traders, oldest relationship end first
    traders: list[str] = field(default_factory=list)
    #: rows per SQL table, all traders together
    sql: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SQL_TABLES, 0))
    #: keys (or hash fields, or jobs) per kind of :data:`REDIS_KINDS`, all traders together
    redis: dict[str, int] = field(default_factory=lambda: dict.fromkeys(REDIS_KINDS, 0))
    #: per trader hash: ``{"sql": {...}, "redis": {...}}``
    by_trader: dict[str, dict[str, dict[str, int]]] = field(default_factory=dict)
    #: the tenant of each trader hash
    tenant_of: dict[str, str] = field(default_factory=dict)
    #: traders per tenant
    by_tenant: dict[str, int] = field(default_factory=dict)
    #: why Redis was not searched (None: it was)
    redis_skipped: str | None = None

    def add(self, tenant: str, hashed: str, sql: dict[str, int],
            redis_counts: dict[str, int]) -> None:
        """Record one trader's counts."""
        self.traders.append(hashed)
        self.tenant_of[hashed] = tenant
        self.by_tenant[tenant] = self.by_tenant.get(tenant, 0) + 1
        self.by_trader[hashed] = {"sql": dict(sql), "redis": dict(redis_counts)}
        for name, n in sql.items():
            self.sql[name] = self.sql.get(name, 0) + n
        for kind, n in redis_counts.items():
            self.redis[kind] = self.redis.get(kind, 0) + n

    def summary(self) -> str:
        """A few lines for a person: what was (or would be) deleted, counts, hashed ids."""
        verb = "would be deleted" if self.dry_run else "deleted"
        cutoff = self.cutoff.isoformat(timespec="seconds")
        head = (f"Retention purge{' (DRY RUN: nothing was deleted)' if self.dry_run else ''}: "
                f"traders whose relationship ended before {cutoff}")
        if not self.traders:
            return f"{head}\nNo such trader: nothing {verb}."
        redis_line = (f"Redis: {self.redis_skipped}" if self.redis_skipped
                      else f"Redis entries {verb}: {_counts(self.redis)}")
        lines = [head, f"{len(self.traders)} trader(s) {verb} (hashed ids), per tenant: "
                       f"{_counts(dict(sorted(self.by_tenant.items())))}"]
        for hashed in self.traders:
            counts = self.by_trader[hashed]
            part = f"  {hashed}  tenant={self.tenant_of[hashed]}  SQL {_counts(counts['sql'])}"
            if not self.redis_skipped:
                part += f"; Redis {_counts(counts['redis'])}"
            lines.append(part)
        lines += [f"SQL rows {verb}: {_counts(self.sql)}", redis_line]
        return "\n".join(lines)


def _counts(counts: dict[str, int]) -> str:
    """``{"a": 1, "b": 0}`` → ``a=1 b=0``.

    >>> _counts({"traders": 1, "verifications": 2})
    'traders=1 verifications=2'
    """
    return " ".join(f"{name}={n}" for name, n in counts.items())


def glob_escape(text: str) -> str:
    r"""``text`` with Redis glob characters escaped, to use a key prefix in ``SCAN MATCH``.

    >>> glob_escape("trace30[eu]:*?")
    'trace30\\[eu\\]:\\*\\?'
    """
    return re.sub(r"([\\*?\[\]])", r"\\\1", text)


def purge(settings: dict[str, Any], *, retention_months: int, dry_run: bool,
          now: datetime | None = None) -> PurgeReport:
    """Delete (or list, with ``dry_run``) every trader whose purge date
    (:func:`shared.retention.purge_after`, ``retention_months`` after the end of the
    relationship) is ``now`` or earlier, from the evidence log and from Redis; see the module
    docstring.

    Raises :class:`PurgeError` if a trader cannot be purged (those before it stay purged; run
    it again to finish), :class:`~shared.errors.ConfigError` if the sealing keys are missing.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if retention_months < 0:
        raise ValueError("retention_months must not be negative")
    report = PurgeReport(cutoff=purge_cutoff(now, retention_months), dry_run=dry_run)
    keys = sealing.check_keys(settings["EVIDENCE_SEALING_KEYS"], sandbox=settings["SANDBOX"])
    evidence = EvidenceLog(settings["DATABASE_URL"], keys)
    redis_side: _RedisSide | None = None
    try:
        traders = evidence.ended_before(report.cutoff)  # (tenant, trader id), every tenant
        if not settings["REDIS_URL"]:
            report.redis_skipped = NO_REDIS
        elif traders:
            hashes = {trader_hash(trader_id, tenant) for tenant, trader_id in traders}
            redis_side = _RedisSide.open(settings, hashes)
        for tenant, trader_id in traders:
            _purge_one(evidence, redis_side, tenant, trader_id, report)
    finally:
        evidence.close()
        if redis_side is not None:
            redis_side.close()
    verb = "would delete" if dry_run else "deleted"
    log.info("retention purge %s %d trader(s) ended before %s (per tenant: %s): SQL rows %s; "
             "Redis %s", verb, len(report.traders), report.cutoff.isoformat(timespec="seconds"),
             _counts(report.by_tenant), _counts(report.sql),
             report.redis_skipped or _counts(report.redis),
             extra={"dry_run": dry_run, "traders": len(report.traders),
                    "traders_per_tenant": report.by_tenant,
                    "sql_rows": report.sql, "redis_entries": report.redis})
    return report


def _purge_one(evidence: EvidenceLog, redis_side: _RedisSide | None, tenant: str,
               trader_id: str, report: PurgeReport) -> None:
    hashed = trader_hash(trader_id, tenant)
    try:
        records = evidence.history(trader_id, limit=100_000, tenant=tenant)
        redis_counts = dict.fromkeys(REDIS_KINDS, 0)
        if redis_side is not None:
            redis_counts = redis_side.purge(
                trader_id, hashed, tenant=tenant,
                verification_ids=[r.id for r in records],
                fingerprints=list(dict.fromkeys(r.fingerprint for r in records)),
                dry_run=report.dry_run)
        if report.dry_run:
            sql = _sql_counts(evidence, tenant, trader_id)
        else:
            sql = evidence.purge_trader(trader_id, tenant=tenant)
    except (sa.exc.SQLAlchemyError, redis.RedisError, OSError) as e:
        log.error("retention purge stopped at trader %s of tenant %s: %s", hashed, tenant,
                  type(e).__name__, extra={"trader": hashed, "tenant": tenant,
                                           "error": type(e).__name__})
        raise PurgeError(
            f"The purge stopped at trader {hashed} of tenant {tenant} ({type(e).__name__}); "
            f"the {len(report.traders)} trader(s) before it are done. Run it again to finish.",
            report) from None
    report.add(tenant, hashed, sql, redis_counts)
    log.info("retention purge %s trader %s of tenant %s: SQL rows %s; Redis %s",
             "would delete" if report.dry_run else "deleted", hashed, tenant, _counts(sql),
             report.redis_skipped or _counts(redis_counts),
             extra={"trader": hashed, "tenant": tenant, "dry_run": report.dry_run,
                    "sql_rows": sql, "redis_entries": redis_counts})


def _sql_counts(evidence: EvidenceLog, tenant: str, trader_id: str) -> dict[str, int]:
    """The rows :meth:`EvidenceLog.purge_trader` would delete (same conditions), for a dry run."""
    d, a, s = webhook_deliveries_table, webhook_attempts_table, staff_actions_table
    t, tt = verifications_table, traders_table
    deliveries = sa.select(d.c.id).where(d.c.tenant_id == tenant, d.c.trader_id == trader_id)
    queries = {
        "webhook_attempts": sa.select(sa.func.count()).select_from(a)
        .where(a.c.delivery_id.in_(deliveries)),
        "webhook_deliveries": sa.select(sa.func.count()).select_from(d)
        .where(d.c.tenant_id == tenant, d.c.trader_id == trader_id),
        "staff_actions": sa.select(sa.func.count()).select_from(s)
        .where(s.c.tenant_id == tenant, s.c.trader_id == trader_id),
        "traders": sa.select(sa.func.count()).select_from(tt)
        .where(tt.c.tenant_id == tenant, tt.c.trader_id == trader_id),
        "verifications": sa.select(sa.func.count()).select_from(t)
        .where(t.c.tenant_id == tenant, t.c.trader_id == trader_id),
    }  # fmt: skip
    with evidence.engine.connect() as conn:
        return {name: int(conn.execute(q).scalar_one()) for name, q in queries.items()}


@dataclass
class _RedisSide:
    """Redis as the purge sees it: the store, RQ's connection, and the keys found by one SCAN
    of each family (not one SCAN per trader: each SCAN walks the whole keyspace)."""

    store: Store
    rq: redis.Redis
    queue: str
    claims: dict[str, list[str]]  # verification id -> its claim keys
    leases: dict[str, list[str]]  # trader hash -> its batch lease keys
    # every batch:{run}:results, batch:{run}:items, batch:{run}:before, with the run's tenant
    result_hashes: list[tuple[str, str]]
    item_hashes: list[tuple[str, str]]
    before_hashes: list[tuple[str, str]]
    jobs: dict[str, list[str]]  # trader hash -> its reverify-* job ids

    @classmethod
    def open(cls, settings: dict[str, Any], hashes: set[str]) -> _RedisSide:
        """Connect and index the keys that may belong to the traders hashed as ``hashes``."""
        # Imported here: trace30.jobs imports this module (for trader_hash).
        from trace30.jobs import queue_name, raw_connection

        store = connect(settings["REDIS_URL"], settings["REDIS_PREFIX"],
                        settings["REDIS_TIMEOUT_S"])
        side = cls(store, raw_connection(settings), queue_name(settings), {}, {}, [], [], [], {})
        try:
            side._index(hashes)
        except BaseException:
            side.close()
            raise
        return side

    def _scan(self, match: str) -> list[str]:
        return list(self.store.client.scan_iter(match=match, count=1000))

    def _index(self, hashes: set[str]) -> None:
        claim_base = self.store.key("gateway", "claim", "retry") + ":"
        for key in self._scan(glob_escape(claim_base) + "*"):
            vid = key[len(claim_base):].rpartition(":")[0]
            self.claims.setdefault(vid, []).append(key)
        batch_base = self.store.key("batch") + ":"
        runs: dict[str, list[tuple[str, list[tuple[str, str]]]]] = {}
        for key in self._scan(glob_escape(batch_base) + "*"):
            rest = key[len(batch_base):]
            parts = rest.rsplit(":", 2)
            if len(parts) == 3 and parts[1] == "lease":
                if parts[2] in hashes:
                    self.leases.setdefault(parts[2], []).append(key)
                continue
            run, _, kind = rest.rpartition(":")
            found = {"results": self.result_hashes, "items": self.item_hashes,
                     "before": self.before_hashes}.get(kind)
            if run and found is not None:
                runs.setdefault(run, []).append((key, found))
        # Each run is one tenant's (trace30.batch keeps it in the run's meta; a run made
        # before tenants is the default tenant's): its hashes name that tenant's traders.
        with self.store.client.pipeline(transaction=False) as pipe:
            for run in runs:
                pipe.hget(batch_base + run + ":meta", "tenant")
            tenants = pipe.execute()
        for (_run, keys), tenant in zip(runs.items(), tenants, strict=True):
            for key, found in keys:
                found.append((key, tenant or DEFAULT_TENANT))
        for key in self._scan(_JOB_KEY_PREFIX + _JOB_ID_PREFIX + "*"):
            job_id = key[len(_JOB_KEY_PREFIX):]
            hashed = job_id.rpartition("-")[2]
            if ":" not in job_id and hashed in hashes:  # not ...:dependents and the like
                self.jobs.setdefault(hashed, []).append(job_id)

    def purge(self, trader_id: str, hashed: str, *, tenant: str, verification_ids: list[str],
              fingerprints: list[str], dry_run: bool) -> dict[str, int]:
        """Delete (or count) the tenant's trader's Redis entries; entries per kind."""
        k = self.store.key
        keys = {
            "gateway:verdict": [k("gateway", "verdict", fp) for fp in fingerprints],
            "gateway:inflight": [k("gateway", "inflight", fp) for fp in fingerprints],
            "gateway:result": [k("gateway", "result", v) for v in verification_ids],
            "gateway:notify": [k("gateway", "notify", v) for v in verification_ids],
            "gateway:claim": [c for v in verification_ids for c in self.claims.get(v, [])],
            "batch:lease": self.leases.get(hashed, []),
        }
        fields = {"batch:results": self.result_hashes, "batch:items": self.item_hashes,
                  "batch:before": self.before_hashes}
        counts: Counter[str] = Counter(dict.fromkeys(REDIS_KINDS, 0))
        pipe = self.store.client.pipeline(transaction=False)
        plan: list[str] = []
        for kind, names in keys.items():
            if names:
                (pipe.exists if dry_run else pipe.delete)(*names)
                plan.append(kind)
        for kind, hash_keys in fields.items():
            for hash_key, run_tenant in hash_keys:
                if run_tenant != tenant:
                    continue  # another tenant's run: its trader of this id is another trader
                (pipe.hexists if dry_run else pipe.hdel)(hash_key, trader_id)
                plan.append(kind)
        for kind, n in zip(plan, pipe.execute(), strict=True):
            counts[kind] += int(n)
        for job_id in self.jobs.get(hashed, []):
            jobs, results = self._purge_job(job_id, dry_run)
            counts["rq:jobs"] += jobs
            counts["rq:results"] += results
        return dict(counts)

    def _purge_job(self, job_id: str, dry_run: bool) -> tuple[int, int]:
        """Delete one RQ job with RQ's own bookkeeping (queue, registries, executions) and its
        results; (jobs, result streams) deleted. A job of another deployment's queue that
        happens to carry the same trader hash is left alone."""
        try:
            job = Job.fetch(job_id, connection=self.rq)
        except NoSuchJobError:
            return 0, 0
        if job.origin != self.queue:
            return 0, 0
        results = 1 if Result.count(job) else 0
        if not dry_run:
            Result.delete_all(job)
            job.delete(remove_from_queue=True)
        return 1, results

    def close(self) -> None:
        """Close both connections."""
        self.store.client.close()
        self.rq.close()
