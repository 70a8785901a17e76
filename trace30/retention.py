"""The retention purge (DSA Art 30(5)): forget traders six months after the relationship ended.

``POST /v1/traders/{id}/end`` records when the platform's relationship with a trader ended;
``trace30 purge`` then deletes everything trace30 holds about every trader whose relationship
ended ``TRACE30_RETENTION_MONTHS`` calendar months ago (6 by default: an end on 31 August is
purged from 28 February on, :mod:`shared.retention`), and ``--dry-run`` only lists it.
It runs over every tenant (the operator purges the whole deployment): a trader is a
``(tenant, trader id)`` pair, and the same trader id in another tenant is another trader, whose
data stays. For each such trader, in this order:

1. Redis, under ``TRACE30_REDIS_PREFIX``, each family named by the module that writes it: the
   gateway's verdict cache (:meth:`services.gateway.cache.CacheKeys.keys_for`: the cached
   verdicts and single-flight locks of the fingerprints of the trader's verifications, which
   cover the tenant, and the results published for waiters under the verifications' ids); the
   batch runs' data of the trader (:class:`trace30.keys.RunKeys`: its field in the ``results``,
   ``items`` and ``before`` hashes of its tenant's runs, the tenant read from the run's
   ``meta``; its lease keys); and its RQ re-verification jobs (:func:`trace30.keys.job_id`,
   whose ids carry this deployment's tag, on this deployment's queue: the job, its place in
   the queue and in RQ's registries, and its stored results, which name the trader in clear).
   Another deployment sharing the Redis server has jobs of other ids: they are not even
   scanned.
2. The SQL evidence log (:meth:`~services.gateway.evidence.EvidenceLog.purge_trader`): its
   verifications, its trader row, its webhook deliveries and their attempts, in one
   transaction. A dry run runs the same deletes and rolls them back: it counts what the purge
   would delete with the code that deletes.
3. The supporting documents' files kept outside the database (the ``filesystem`` or ``s3``
   document storage, :mod:`services.gateway.documents`): their keys are read before the SQL
   transaction and the files deleted after its commit (a crash in between leaves sealed files
   that no row names; nothing can read them without the sealing keys). The ``database``
   storage's files are rows of ``document_blobs``, deleted in step 2.

Legal holds and the disclosures log (Art 30(6), :mod:`services.gateway.disclosures`): a
trader under a legal hold in force (``POST /v1/traders/{id}/hold``, ``trace30 export --hold``)
is skipped, whatever its end date, and reported as held (``held``: hashes, with the tenant)
until the hold is released; the next purge after the release deletes it. When a trader is
purged, its released holds are deleted with it, and every entry of the disclosures log naming
it keeps its row (who disclosed what to which authority, when, on what basis, the files'
hashes) with the trader's id replaced by ``purged:<trader hash>``: the log of disclosures
stays, the trader's id does not (``disclosures`` in the report: entries rewritten).

Traders go in batches of ``TRACE30_PURGE_BATCH_SIZE`` (500): the steps above run once per
batch (their purge locks taken by one Redis script call, their Redis entries deleted, each
key on its own so that it is counted for its trader and kind, by another: a call per
:data:`SCRIPT_KEYS` keys, not a command per trader and kind; their SQL rows in one transaction
with a statement per table, a tombstone per trader), so a purge of 100,000 traders is not
100,000 transactions. A batch that fails is tried again one trader at a time, so the error
names the trader that cannot be purged.

SQL comes last on purpose: ``ended_before`` reads the trader list from SQL, so a purge that
stops half-way (Redis down, a crash) leaves the trader listed and the next purge finishes it.

Purges may overlap (two hosts' cron, a manual run during the daily one): they take turns per
trader under a Redis lock (:func:`trace30.keys.purge_lock_key`). A trader another purge holds,
or has purged since this one listed it, is left to that purge and not reported, so each trader
is deleted, and counted, by exactly one of them.

The services' own check caches are not searched. Their entries expire long before the
retention period ends: the VAT service keeps an answer 24 hours (7 days as a stale fallback
during a VIES outage), the registry service 24 hours, the payment service's payee checks 24
hours. Six months after a relationship ended none of them is left (this holds as long as
nobody configures those TTLs beyond the retention period). They are keyed by digests of VAT
numbers, register numbers and IBANs, not by trader, so there would be nothing to match on
anyway. Nor are RQ jobs named before job ids carried the deployment
(``reverify-{run}-{trader hash}``): RQ deletes a job ``TRACE30_BATCH_RESULT_TTL_S`` (30 days)
after it ran, long before a retention period ends. Nor are the gateway's former
``gateway:notify:{verification id}`` and ``gateway:claim:...`` keys, written by versions before
the pending retries moved to SQL: they expired within minutes. Gateway processes may also
keep a served verdict in memory for ``TRACE30_GATEWAY_LOCAL_CACHE_TTL_S`` (seconds).

In sandbox without ``TRACE30_REDIS_URL`` the services use an embedded store inside each process:
there is nothing shared to delete, so Redis is skipped and the report says so (outside sandbox
the purge refuses to run without Redis, as the services refuse to start).

Traders appear in the report and the logs only as :func:`~trace30.keys.trader_hash` (with
their tenant, and counts per tenant), never in clear. The hash is a pseudonym, not
anonymisation: whoever knows a trader id and its tenant can recompute it, which is what lets an
operator answer "was trader X purged?" from the log.
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa
from rq.exceptions import InvalidJobOperation, NoSuchJobError
from rq.job import Job
from rq.results import Result

from services.gateway import disclosures, sealing
from services.gateway.access import DEFAULT_TENANT
from services.gateway.cache import CacheKeys
from services.gateway.documents import DocumentService, StorageError, build_storage
from services.gateway.evidence import EvidenceLog
from shared.errors import ConfigError
from shared.redis_client import Store, connect
from shared.retention import purge_cutoff
from trace30.jobs import raw_connection
from trace30.keys import (
    RunKeys,
    job_id_of_key,
    job_key_pattern,
    job_trader_hash,
    purge_lock_key,
    queue_name,
    trader_hash,
)

__all__ = ["NO_REDIS", "REDIS_KINDS", "SQL_TABLES", "PurgeError", "PurgeReport", "purge",
           "trader_hash"]

log = logging.getLogger("trace30.retention")

#: SQL tables in the order :meth:`EvidenceLog.purge_trader` reports them.
SQL_TABLES = ("webhook_attempts", "webhook_deliveries", "staff_actions", "complaints", "statements",
              "reviews", "document_blobs", "documents", "traders", "verifications")

#: The batch runs' hashes whose fields are trader ids, as the report names them, in the order
#: of :meth:`RunKeys.trader_hashes`.
BATCH_HASH_KINDS = ("batch:results", "batch:items", "batch:before")

#: What is counted in Redis: keys (the verdict cache's kinds, :data:`CacheKeys.KINDS`, and
#: ``batch:lease``), except :data:`BATCH_HASH_KINDS` (hash fields) and ``rq:jobs`` (jobs,
#: each with its queue and registry entries).
REDIS_KINDS = (*CacheKeys.KINDS, *BATCH_HASH_KINDS, "batch:lease", "rq:jobs", "rq:results")

#: How long a purge may hold one trader (:func:`trace30.keys.purge_lock_key`), seconds: far
#: longer than one trader's deletes take; a purge that died holding it is finished by the next.
PURGE_LOCK_S = 300

#: Traders purged together (one SQL transaction, one Redis pipeline), unless
#: ``TRACE30_PURGE_BATCH_SIZE`` says otherwise.
PURGE_BATCH_SIZE = 500

NO_REDIS = ("not searched: TRACE30_REDIS_URL is not set (the embedded store lives inside each "
            "process: nothing shared to delete)")


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
    #: the document storage backend, and the document files kept outside the database that
    #: were (or would be) deleted after the SQL transaction, all traders together
    document_storage: str = "database"
    document_files: int = 0
    #: hashes of the traders skipped because a legal hold is in force, with their tenant
    held: list[str] = field(default_factory=list)
    held_tenant_of: dict[str, str] = field(default_factory=dict)
    #: disclosures log entries whose trader id was replaced by the purged trader's hash
    disclosures: int = 0

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
        held = self._held_lines()
        if not self.traders:
            return "\n".join([head, f"No such trader: nothing {verb}.", *held])
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
        lines += [f"SQL rows {verb}: {_counts(self.sql)}", redis_line,
                  f"Disclosures log entries pseudonymised: {self.disclosures}", *held]
        if self.document_storage != "database":
            lines.append(f"Document files ({self.document_storage} storage) {verb}: "
                         f"{self.document_files}")
        return "\n".join(lines)

    def _held_lines(self) -> list[str]:
        """The legal holds' part of :meth:`summary`."""
        if not self.held:
            return ["Held (legal hold in force, skipped): 0"]
        return [f"Held (legal hold in force, skipped): {len(self.held)} trader(s) (hashed ids)",
                *(f"  {h}  tenant={self.held_tenant_of[h]}" for h in self.held)]


def _counts(counts: dict[str, int]) -> str:
    """``{"a": 1, "b": 0}`` → ``a=1 b=0``.

    >>> _counts({"traders": 1, "verifications": 2})
    'traders=1 verifications=2'
    """
    return " ".join(f"{name}={n}" for name, n in counts.items())


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
    evidence = EvidenceLog(settings["DATABASE_URL"], keys,
                           chain=settings.get("EVIDENCE_CHAIN", True))
    signer = _tombstone_signer(settings)
    redis_side: _RedisSide | None = None
    try:
        files = DocumentService(evidence, build_storage(settings, evidence),
                                max_bytes=settings["GATEWAY_DOCUMENT_MAX_BYTES"])
        report.document_storage = files.storage.name
        traders = evidence.ended_before(report.cutoff)  # (tenant, trader id), every tenant
        if not settings["REDIS_URL"]:
            report.redis_skipped = NO_REDIS
        elif traders:
            hashes = {trader_hash(trader_id, tenant) for tenant, trader_id in traders}
            redis_side = _RedisSide.open(settings, hashes)
        held = evidence.held_traders()  # checked again in each deleting transaction
        size = max(1, int(settings.get("PURGE_BATCH_SIZE") or PURGE_BATCH_SIZE))
        for start in range(0, len(traders), size):
            _purge_batch(evidence, redis_side, files, traders[start:start + size], held,
                         report, signer)
    finally:
        evidence.close()
        if redis_side is not None:
            redis_side.close()
    verb = "would delete" if dry_run else "deleted"
    log.info("retention purge %s %d trader(s) ended before %s (per tenant: %s): SQL rows %s; "
             "Redis %s; %d held", verb, len(report.traders),
             report.cutoff.isoformat(timespec="seconds"),
             _counts(report.by_tenant), _counts(report.sql),
             report.redis_skipped or _counts(report.redis), len(report.held),
             extra={"dry_run": dry_run, "held": len(report.held), "traders": len(report.traders),
                    "traders_per_tenant": report.by_tenant,
                    "sql_rows": report.sql, "redis_entries": report.redis})
    return report


def _skip_held(report: PurgeReport, hashed: str, tenant: str) -> None:
    report.held.append(hashed)
    report.held_tenant_of[hashed] = tenant
    log.info("retention purge: trader %s of tenant %s is under a legal hold: skipped",
             hashed, tenant, extra={"trader": hashed, "tenant": tenant, "held": True})


def _purge_batch(evidence: EvidenceLog, redis_side: _RedisSide | None, files: DocumentService,
                 batch: list[tuple[str, str]], held: set[tuple[str, str]],
                 report: PurgeReport, signer: Any = None) -> None:
    """Purge a batch of traders together (one SQL transaction, one Redis pipeline). If it
    fails, its traders are tried again one at a time, so that every trader that can be purged
    is, and the error names the one that cannot."""
    todo = []
    for tenant, trader_id in batch:
        if (tenant, trader_id) in held:  # a legal hold: skip, report
            _skip_held(report, trader_hash(trader_id, tenant), tenant)
        else:
            todo.append((tenant, trader_id))
    if not todo:
        return
    if len(todo) > 1:
        with contextlib.suppress(*_PURGE_ERRORS):
            _purge_together(evidence, redis_side, files, todo, report, signer)
            return
    for tenant, trader_id in todo:
        try:
            _purge_together(evidence, redis_side, files, [(tenant, trader_id)], report, signer)
        except _PURGE_ERRORS as e:
            hashed = trader_hash(trader_id, tenant)
            log.error("retention purge stopped at trader %s of tenant %s: %s", hashed, tenant,
                      type(e).__name__, extra={"trader": hashed, "tenant": tenant,
                                               "error": type(e).__name__})
            raise PurgeError(
                f"The purge stopped at trader {hashed} of tenant {tenant} ({type(e).__name__}); "
                f"the {len(report.traders)} trader(s) before it are done. Run it again to "
                "finish.", report) from None


#: What stops a purge at a trader (anything else is a bug, and propagates as it is).
_PURGE_ERRORS = (sa.exc.SQLAlchemyError, redis.RedisError, OSError, StorageError)


def _purge_together(evidence: EvidenceLog, redis_side: _RedisSide | None,
                    files: DocumentService, batch: list[tuple[str, str]], report: PurgeReport,
                    signer: Any = None) -> None:
    """Purge ``batch`` (no trader of which was under a hold when the purge listed them): under
    each trader's purge lock, Redis, then SQL in one transaction (holds checked again there),
    then the document files; each trader reported on its own."""
    hashes = {pair: trader_hash(pair[1], pair[0]) for pair in batch}
    with _holding_many(redis_side, hashes, report.dry_run) as mine:
        for tenant, trader_id in batch:
            if (tenant, trader_id) not in mine:
                hashed = hashes[(tenant, trader_id)]
                log.info("retention purge: trader %s of tenant %s is being purged by another "
                         "purge", hashed, tenant, extra={"trader": hashed, "tenant": tenant})
        if not mine:
            return
        keys = evidence.verification_keys(mine)
        redis_counts = {pair: dict.fromkeys(REDIS_KINDS, 0) for pair in mine}
        if redis_side is not None:
            redis_counts = redis_side.purge_many(
                [(tenant, trader_id, hashes[(tenant, trader_id)], *keys[(tenant, trader_id)])
                 for tenant, trader_id in mine], dry_run=report.dry_run)
        # The document files kept outside the database: listed before the SQL delete (which
        # forgets their keys), deleted after its commit; a dry run deletes none.
        file_keys = {}
        for pair, stored in evidence.documents_outside(mine).items():
            for backend, _key in stored:
                if backend != files.storage.name:
                    raise StorageError(f"a document file is kept by the {backend!r} storage, "
                                       f"not the configured {files.storage.name!r}")
            file_keys[pair] = [key for _backend, key in stored]
        outcome = evidence.purge_traders(
            mine, dry_run=report.dry_run, signer=signer,
            pseudonym=lambda tenant, trader_id: f"purged:{hashes[(tenant, trader_id)]}")
        for tenant, trader_id in outcome.held:  # a hold placed since the listing: left whole
            _skip_held(report, hashes[(tenant, trader_id)], tenant)
        purged = [pair for pair in mine if pair in outcome.counts]
        gone = [key for pair in purged for key in file_keys[pair]]
        report.document_files += len(gone) if report.dry_run else files.purge_files(gone)
    for pair in purged:
        tenant, hashed, sql = pair[0], hashes[pair], outcome.counts[pair]
        if not report.dry_run and not sql["traders"]:
            # Listed by this purge, then purged by another one before this one got to it.
            log.info("retention purge: trader %s of tenant %s was purged by another purge",
                     hashed, tenant, extra={"trader": hashed, "tenant": tenant})
            continue
        report.add(tenant, hashed, sql, redis_counts[pair])
        report.disclosures += outcome.disclosures.get(pair, 0)
        log.info("retention purge %s trader %s of tenant %s: SQL rows %s; Redis %s",
                 "would delete" if report.dry_run else "deleted", hashed, tenant, _counts(sql),
                 report.redis_skipped or _counts(redis_counts[pair]),
                 extra={"trader": hashed, "tenant": tenant, "dry_run": report.dry_run,
                        "sql_rows": sql, "redis_entries": redis_counts[pair]})


def _tombstone_signer(settings: dict[str, Any]) -> Any:
    """The key that signs the hash chain's purge tombstones: the disclosure signing key (the
    sandbox one in sandbox). Without one configured the tombstones are chained but unsigned,
    and the purge says so in its log."""
    try:
        return disclosures.signing_key(settings.get("DISCLOSURE_SIGNING_KEY"),
                                       sandbox=bool(settings.get("SANDBOX")))
    except ConfigError:
        log.warning("retention purge: TRACE30_DISCLOSURE_SIGNING_KEY is not set; the evidence "
                    "chain's tombstones are not signed")
        return None


#: Takes each of KEYS (a purge lock) for ARGV[1] (this purge's token) for ARGV[2] ms if no one
#: holds it; 1 or 0 for each, in order.
_TAKE = """local got = {}
for i, key in ipairs(KEYS) do
  got[i] = redis.call('set', key, ARGV[1], 'NX', 'PX', ARGV[2]) and 1 or 0
end
return got"""

#: Releases each of KEYS that still holds ARGV[1] (this purge's token), as redis-py's own
#: ``Lock.release`` does one at a time; how many.
_RELEASE = """local released = 0
for _, key in ipairs(KEYS) do
  if redis.call('get', key) == ARGV[1] then released = released + redis.call('del', key) end
end
return released"""

#: Runs ARGV[1] (``del`` or ``exists``) on each of KEYS; its answer for each (1 or 0), in
#: order: one command for many traders' keys, each still counted for its trader and kind.
_EACH = """local found = {}
for i, key in ipairs(KEYS) do found[i] = redis.call(ARGV[1], key) end
return found"""

#: Keys per call of :data:`_TAKE`, :data:`_RELEASE` or :data:`_EACH` (a script holds Redis for
#: its whole run: a millisecond or so for this many, not a batch's thousands at once).
SCRIPT_KEYS = 1000


def _chunks(items: list[str]) -> Iterator[list[str]]:
    """``items`` in lists of at most :data:`SCRIPT_KEYS`."""
    for start in range(0, len(items), SCRIPT_KEYS):
        yield items[start:start + SCRIPT_KEYS]


@contextlib.contextmanager
def _holding_many(redis_side: _RedisSide | None, hashes: dict[tuple[str, str], str],
                  dry_run: bool) -> Iterator[list[tuple[str, str]]]:
    """Hold the purge locks of the traders (``(tenant, trader id)`` → hash) while the block
    runs; yield the traders whose lock this purge got (the others are another purge's). Two
    purges run at once (two cron hosts, a manual run during the daily one) take turns per
    trader, so each trader is deleted, and reported, by one of them: without the lock both
    would delete some of its Redis entries and count its RQ jobs twice. A dry run deletes
    nothing and takes no lock; without Redis the SQL transaction alone decides (the purge that
    finds the trader's row gone reports nothing of it). The locks are taken and released by
    a script call per :data:`SCRIPT_KEYS` traders, not a command per trader."""
    pairs = list(hashes)
    if redis_side is None or dry_run:
        yield pairs
        return
    client = redis_side.store.client
    token = uuid.uuid4().hex
    names = [purge_lock_key(redis_side.store, hashes[pair]) for pair in pairs]
    take, release = client.register_script(_TAKE), client.register_script(_RELEASE)
    with client.pipeline(transaction=False) as pipe:
        for chunk in _chunks(names):
            take(keys=chunk, args=[token, PURGE_LOCK_S * 1000], client=pipe)
        taken = [ok for answer in pipe.execute() for ok in answer]
    got = [pair for pair, ok in zip(pairs, taken, strict=True) if ok]
    try:
        yield got
    finally:
        mine = [name for name, ok in zip(names, taken, strict=True) if ok]
        if mine:
            with client.pipeline(transaction=False) as pipe:
                for chunk in _chunks(mine):  # not ours any more if the purge outlived
                    release(keys=chunk, args=[token], client=pipe)  # PURGE_LOCK_S
                pipe.execute()


@dataclass
class _RedisSide:
    """Redis as the purge sees it: the store, RQ's connection, and the keys found by one SCAN
    of each family (not one SCAN per trader: each SCAN walks the whole keyspace).

    It names no key itself: the verdict cache's keys come from :class:`CacheKeys`, the batch
    runs' and jobs' from :mod:`trace30.keys`."""

    store: Store
    rq: redis.Redis
    queue: str
    leases: dict[str, list[str]]  # trader hash -> its batch lease keys
    # per kind of BATCH_HASH_KINDS: every run's hash of that kind, with the run's tenant
    trader_hashes: dict[str, list[tuple[str, str]]]
    jobs: dict[str, list[str]]  # trader hash -> its re-verification job ids

    @classmethod
    def open(cls, settings: dict[str, Any], hashes: set[str]) -> _RedisSide:
        """Connect and index the keys that may belong to the traders hashed as ``hashes``."""
        store = connect(settings["REDIS_URL"], settings["REDIS_PREFIX"],
                        settings["REDIS_TIMEOUT_S"])
        side = cls(store, raw_connection(settings), queue_name(settings), {},
                   {kind: [] for kind in BATCH_HASH_KINDS}, {})
        try:
            side._index(hashes)
        except BaseException:
            side.close()
            raise
        return side

    def _scan(self, match: str) -> list[str]:
        return list(self.store.client.scan_iter(match=match, count=1000))

    def _index(self, hashes: set[str]) -> None:
        kind_of = dict(zip(RunKeys.trader_hashes(), BATCH_HASH_KINDS, strict=True))
        runs: dict[str, list[tuple[str, str]]] = {}  # run -> its (hash key, kind)
        for key in self._scan(RunKeys.pattern(self.store)):
            found = RunKeys.parse(self.store, key)
            if found is None:
                continue
            if found.kind == RunKeys.LEASE:
                if found.trader_hash in hashes:
                    self.leases.setdefault(found.trader_hash, []).append(key)
            elif found.kind in kind_of:
                runs.setdefault(found.run_id, []).append((key, kind_of[found.kind]))
        # Each run is one tenant's (trace30.batch keeps it in the run's meta; a run made
        # before tenants is the default tenant's): its hashes name that tenant's traders.
        with self.store.client.pipeline(transaction=False) as pipe:
            for run in runs:
                pipe.hget(RunKeys(self.store, run, "").meta, "tenant")
            tenants = pipe.execute()
        for keys, tenant in zip(runs.values(), tenants, strict=True):
            for key, kind in keys:
                self.trader_hashes[kind].append((key, tenant or DEFAULT_TENANT))
        for key in self._scan(job_key_pattern(self.store.prefix)):
            job_id = job_id_of_key(key)
            hashed = job_trader_hash(job_id, prefix=self.store.prefix) if job_id else None
            if job_id and hashed in hashes:  # not ...:dependents and the like
                self.jobs.setdefault(hashed, []).append(job_id)

    def purge_many(self, traders: list[tuple[str, str, str, list[str], list[str]]], *,
                   dry_run: bool) -> dict[tuple[str, str], dict[str, int]]:
        """Delete (or count) the Redis entries of ``(tenant, trader id, hash, verification
        ids, fingerprints)`` each, in one pipeline; entries per kind, per ``(tenant, trader
        id)``."""
        counts = {(tenant, trader_id): Counter(dict.fromkeys(REDIS_KINDS, 0))
                  for tenant, trader_id, *_ in traders}
        cache = CacheKeys(self.store)
        names: list[str] = []  # every key, deleted (or counted) one by one by _EACH
        plan: list[tuple[tuple[str, str], str]] = []  # whose, of which kind: names, then hashes
        fields: list[tuple[str, str]] = []  # (batch run hash, trader id)
        for tenant, trader_id, hashed, verification_ids, fingerprints in traders:
            keys = {
                **cache.keys_for(fingerprints=fingerprints, verification_ids=verification_ids),
                "batch:lease": self.leases.get(hashed, []),
            }
            for kind, of_kind in keys.items():
                names += of_kind
                plan += [((tenant, trader_id), kind)] * len(of_kind)
        for tenant, trader_id, *_ in traders:
            for kind, hash_keys in self.trader_hashes.items():
                for hash_key, run_tenant in hash_keys:
                    if run_tenant != tenant:
                        continue  # another tenant's run: its trader of this id is another
                    fields.append((hash_key, trader_id))
                    plan.append(((tenant, trader_id), kind))
        each = self.store.client.register_script(_EACH)
        with self.store.client.pipeline(transaction=False) as pipe:
            for chunk in _chunks(names):
                each(keys=chunk, args=["exists" if dry_run else "del"], client=pipe)
            for hash_key, trader_id in fields:
                (pipe.hexists if dry_run else pipe.hdel)(hash_key, trader_id)
            answers = pipe.execute()
        scripts = len(answers) - len(fields)
        found = [n for answer in answers[:scripts] for n in answer] + answers[scripts:]
        for (pair, kind), n in zip(plan, found, strict=True):
            counts[pair][kind] += int(n)
        for tenant, trader_id, hashed, *_ in traders:
            for job_id in self.jobs.get(hashed, []):
                jobs, results = self._purge_job(job_id, dry_run)
                counts[(tenant, trader_id)]["rq:jobs"] += jobs
                counts[(tenant, trader_id)]["rq:results"] += results
        return {pair: dict(c) for pair, c in counts.items()}

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
            try:
                Result.delete_all(job)
                job.delete(remove_from_queue=True)
            except (NoSuchJobError, InvalidJobOperation):
                return 0, 0  # gone since it was fetched (expired, or deleted by someone else)
        return 1, results

    def close(self) -> None:
        """Close both connections."""
        self.store.client.close()
        self.rq.close()
