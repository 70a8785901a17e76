"""``trace30 reverify``: select traders, queue one job each, follow the run, report changes.

A run re-verifies the traders of one tenant (``--tenant``, default ``default``): only its
traders are selected, its jobs look traders up in it, and the run keeps its tenant in its
``meta``; resuming a run with another ``--tenant`` is refused.

A run has an id. By default it is derived from the tenant, the selection (or the input file's
content) and today's date (``{tenant}-{day}-{digest}``), so running the same command again the
same day resumes the run: traders with a result are not redone, traders whose job is queued or
running are left alone, and traders whose job was lost (its worker died: its lease lapsed) or
failed are queued again.

While following a run (``--wait``, the default) the command shows a progress bar with the rate
and the time left, re-queues lost jobs, and at the end writes the report,
``{report_dir}/reverify-{run_id}.json`` and ``.csv``: every trader with its verdict before and
after, and counts per change (``verified→rejected: 3``). A trader still pending after its
retries is reported as pending, never dropped.

Reports name traders only by :func:`trace30.keys.trader_hash` (the pseudonym the purge
logs), never by their id in clear, with the id of the verification the run made: a report is
a file that is copied, mailed and archived where ``trace30 purge`` cannot follow it, so it
must hold nothing the purge would have to delete. Staff open a row's verification on the
dashboard while its evidence is kept; an operator asking "what happened to trader X?"
computes X's hash.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import click
from marshmallow import ValidationError
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import (
    DeferredJobRegistry,
    FailedJobRegistry,
    ScheduledJobRegistry,
    StartedJobRegistry,
)

from services.gateway.access import valid_tenant
from services.gateway.evidence import EvidenceLog
from services.gateway.schemas import SubmissionSchema
from services.gateway.sealing import Sealer, check_keys
from shared.redis_client import Store, connect
from trace30.jobs import BatchError, job_meta, raw_connection, retry_policy, reverify_trader
from trace30.keys import RunKeys, queue_name, trader_hash

__all__ = ["BatchError", "reverify_command"]

_ACTIVE = {JobStatus.QUEUED, JobStatus.SCHEDULED, JobStatus.DEFERRED, JobStatus.STARTED}


def _run_id(tenant: str, selection: str) -> str:
    day = datetime.now(UTC).strftime("%Y%m%d")
    digest = hashlib.sha256(f"{tenant}\0{selection}".encode()).hexdigest()[:10]
    return f"{tenant}-{day}-{digest}"


def _nest(row: dict[str, str]) -> dict[str, Any]:
    """``{"address.city": "Paris"}`` → ``{"address": {"city": "Paris"}}``; blanks dropped."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if key is None or value in (None, ""):
            continue
        node = out
        *parents, leaf = key.strip().split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def read_submissions(path: Path) -> dict[str, dict[str, Any]]:
    """Submissions from a JSONL file (one JSON object a line) or a CSV file (dotted column
    names such as ``address.city``, ``payment.iban``, ``self_certification.accepted``), each
    validated like ``POST /v1/verifications``; raise :class:`BatchError` naming bad lines."""
    text = path.read_text(encoding="utf-8-sig")
    rows: list[tuple[int, Any]] = []
    if path.suffix.lower() in (".jsonl", ".ndjson", ".json"):
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    rows.append((number, json.loads(line)))
                except json.JSONDecodeError:
                    rows.append((number, None))
    else:
        reader = csv.DictReader(io.StringIO(text))
        rows = [(number, _nest(row)) for number, row in enumerate(reader, 2)]
    schema, subs, problems = SubmissionSchema(), {}, []
    for number, row in rows:
        if not isinstance(row, dict):
            problems.append(f"line {number}: not a JSON object")
            continue
        try:
            sub = schema.load(row)
        except ValidationError as e:
            problems.append(f"line {number}: {', '.join(sorted(map(str, e.messages)))}")
            continue
        subs[sub["trader_id"]] = sub
    if problems:
        shown = "\n  ".join(problems[:20])
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise BatchError(f"{path}: {len(problems)} submission(s) are not valid; nothing was "
                         f"queued:\n  {shown}{more}")
    if not subs:
        raise BatchError(f"{path}: no submission found")
    return subs


def select_traders(settings: dict[str, Any], *, tenant: str, not_checked_days: int | None,
                   verdicts: list[str]) -> list[str]:
    """The tenant's trader ids from the evidence log (relationships that ended are left out):
    every one, or those not checked for ``not_checked_days``, or of the ``verdicts`` given."""
    evidence = EvidenceLog(settings["DATABASE_URL"],
                           check_keys(settings["EVIDENCE_SEALING_KEYS"],
                                      sandbox=settings["SANDBOX"]))
    try:
        # migrated by `trace30 migrate` (the release step), or here in sandbox
        evidence.prepare_schema(migrate=settings["MIGRATE_ON_START"], component="trace30 reverify")
        before = (datetime.now(UTC) - timedelta(days=not_checked_days)
                  if not_checked_days is not None else None)
        ids: list[str] = []
        wanted: list[str | None] = list(verdicts) or [None]  # None: every verdict
        for verdict in wanted:
            ids.extend(evidence.traders(tenant=tenant, verdict=verdict, checked_before=before))
        return list(dict.fromkeys(ids))
    finally:
        evidence.close()


def enqueue(settings: dict[str, Any], store: Store, queue: Queue, run_id: str,
            items: dict[str, str], *, tenant: str) -> int:
    """Record the run's traders (of ``tenant``) and queue a job for each one without a result
    or live job.

    Everything goes in batches (one Redis round trip per thousand traders, not several per
    trader): the follower calls this every few seconds to re-queue lost jobs, and with hundreds
    of thousands of traders per-trader round trips would take the CPU the workers need.
    """
    keys = RunKeys(store, run_id, tenant)
    ttl = settings["BATCH_RESULT_TTL_S"]
    # The tenant first: the purge reads it to know whose traders the run's hashes name.
    store.client.hsetnx(keys.meta, "tenant", tenant)
    if items:
        for chunk in _chunks(list(items.items())):
            store.client.hset(keys.items, mapping=dict(chunk))
    store.client.hsetnx(keys.meta, "created_at", datetime.now(UTC).isoformat())
    index, now = RunKeys.index(store), time.time()  # the runs the metrics report
    store.client.hsetnx(index, run_id, now)
    old = [r for r, at in store.client.hgetall(index).items() if float(at) < now - ttl]
    if old:
        store.client.hdel(index, *old)
    store.client.expire(index, ttl)
    for key in (keys.items, keys.meta, keys.results):
        store.client.expire(key, ttl)
    done = set(_hkeys(store, keys.results))
    waiting = [t for t in _hkeys(store, keys.items) if t not in done]
    alive = _alive(store, queue, keys, run_id, waiting)
    lost = [t for t in waiting if t not in alive]
    retry = retry_policy(settings)
    timeout = int(settings["GATEWAY_DEADLINE_S"] * 4 + 60)
    meta = job_meta()  # the run's request id and trace, carried on by each job
    for chunk in _chunks(lost):
        with queue.connection.pipeline() as pipe:
            queue.enqueue_many([
                Queue.prepare_data(reverify_trader, (run_id, trader_id, tenant),
                                   job_id=keys.job_id(trader_id), retry=retry,
                                   result_ttl=ttl, failure_ttl=ttl, timeout=timeout,
                                   meta=meta)
                for trader_id in chunk
            ], pipeline=pipe)
            pipe.execute()
    return len(lost)


def _hkeys(store: Store, key: str) -> list[str]:
    """The fields of hash ``key`` (the store decodes answers to ``str``)."""
    return cast(list[str], store.client.hkeys(key))


def _chunks(values: list[Any], size: int = 1000) -> Iterator[list[Any]]:
    for i in range(0, len(values), size):
        yield values[i:i + size]


def _jobs(queue: Queue, keys: RunKeys, trader_ids: list[str]) -> dict[str, Job]:
    """The run's jobs of ``trader_ids`` that exist, fetched a thousand at a time."""
    found: dict[str, Job] = {}
    for chunk in _chunks(trader_ids):
        jobs = Job.fetch_many([keys.job_id(t) for t in chunk],
                              connection=queue.connection)
        found.update((t, j) for t, j in zip(chunk, jobs, strict=True) if j is not None)
    return found


def _alive(store: Store, queue: Queue, keys: RunKeys, run_id: str,
           trader_ids: list[str]) -> set[str]:
    """The traders whose job is waiting or running (a started job without its lease died).

    RQ's queue and registries answer for nearly all of them with a few reads of job ids; only
    the others (lost jobs, and jobs caught between two registries while we looked) are
    fetched and judged one by one, so a pass over a run of 100,000 traders stays cheap.
    """
    by_job = {keys.job_id(t): t for t in trader_ids}
    waiting = set(queue.get_job_ids())
    for registry in (ScheduledJobRegistry(queue=queue), DeferredJobRegistry(queue=queue)):
        waiting.update(registry.get_job_ids(cleanup=False))
    alive = {by_job[j] for j in waiting if j in by_job}
    started = [by_job[j] for j in StartedJobRegistry(queue=queue).get_job_ids(cleanup=False)
               if j in by_job]
    alive.update(_leased(store, keys, started))
    return alive | _alive_by_status(store, queue, keys, run_id,
                                    [t for t in trader_ids if t not in alive])


def _leased(store: Store, keys: RunKeys, trader_ids: list[str]) -> set[str]:
    leased: set[str] = set()
    for chunk in _chunks(trader_ids):
        with store.client.pipeline(transaction=False) as pipe:
            for trader_id in chunk:
                pipe.exists(keys.lease(trader_id))
            leased.update(t for t, found in zip(chunk, pipe.execute(), strict=True) if found)
    return leased


def _alive_by_status(store: Store, queue: Queue, keys: RunKeys, run_id: str,
                     trader_ids: list[str]) -> set[str]:
    """The traders whose job's own status says waiting, or running with its lease."""
    jobs = _jobs(queue, keys, trader_ids)
    alive = {t for t, j in jobs.items()
             if j.get_status(refresh=False) in _ACTIVE - {JobStatus.STARTED}}
    started = [t for t, j in jobs.items() if j.get_status(refresh=False) == JobStatus.STARTED]
    return alive | _leased(store, keys, started)


def _failed(queue: Queue, keys: RunKeys, trader_ids: list[str]) -> list[str]:
    """The traders whose job failed for good (no retry left): RQ's failed-job registry names
    the candidates, so only those are fetched."""
    by_job = {keys.job_id(t): t for t in trader_ids}
    failed = [by_job[j] for j in FailedJobRegistry(queue=queue).get_job_ids(cleanup=False)
              if j in by_job]
    return [t for t, j in _jobs(queue, keys, failed).items()
            if j.get_status(refresh=False) == JobStatus.FAILED and not j.retries_left]


def follow(settings: dict[str, Any], store: Store, queue: Queue, run_id: str,
           timeout_s: float | None, *, tenant: str) -> bool:
    """Show progress until every trader has a result (True) or ``timeout_s`` passes (False)."""
    keys = RunKeys(store, run_id, tenant)
    total = store.client.hlen(keys.items)
    started = time.monotonic()
    first = store.client.hlen(keys.results)
    last_check = started
    with click.progressbar(length=total, label="re-verifying", show_eta=True,
                           show_pos=True, file=sys.stderr) as bar:
        bar.update(first)
        shown = first
        while True:
            done = store.client.hlen(keys.results)
            bar.update(done - shown)
            shown = done
            elapsed = time.monotonic() - started
            rate = (done - first) / elapsed if elapsed > 0 else 0.0
            bar.label = f"re-verifying {rate:6.1f}/s"
            if done >= total:
                return True
            if timeout_s is not None and elapsed >= timeout_s:
                return False
            if time.monotonic() - last_check >= min(5.0, settings["BATCH_LEASE_S"] / 2):
                last_check = time.monotonic()
                done_ids = set(_hkeys(store, keys.results))
                pending = [t for t in _hkeys(store, keys.items) if t not in done_ids]
                for trader_id in _failed(queue, keys, pending):
                    # Its job failed for good (an error, not a verdict): reported, not dropped.
                    store.client.hset(keys.results, trader_id, json.dumps({
                        "trader_id": trader_id, "status": "failed", "before": None,
                        "after": None, "changed": False}))
                enqueue(settings, store, queue, run_id, {}, tenant=tenant)  # re-queue lost jobs
            time.sleep(0.5)


def report(store: Store, run_id: str, report_dir: Path, *, tenant: str) -> dict[str, Any]:
    """Write the run's report as JSON and CSV; return the JSON document."""
    keys = RunKeys(store, run_id, tenant)
    items = _hkeys(store, keys.items)
    results = {k: json.loads(v) for k, v in store.client.hgetall(keys.results).items()}
    rows = [_pseudonymous(results.get(t, {"status": "not_finished", "before": None,
                                          "after": None, "changed": False}), t, tenant)
            for t in items]
    rows.sort(key=lambda r: r["trader_hash"])
    changes = Counter(f"{r['before']}→{r['after']}" for r in rows if r.get("changed"))
    doc = {
        "run_id": run_id,
        "tenant": tenant,
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "total": len(rows),
        "finished": sum(1 for r in rows if r["status"] in ("done", "pending", "not_found")),
        "changed": sum(changes.values()),
        "changes": dict(sorted(changes.items())),
        "by_status": dict(Counter(r["status"] for r in rows)),
        "still_pending": [r["trader_hash"] for r in rows if r["status"] == "pending"],
        "failed": [r["trader_hash"] for r in rows if r["status"] in ("failed", "not_finished")],
        "traders": rows,
    }
    report_dir.mkdir(parents=True, exist_ok=True)
    base = report_dir / f"reverify-{run_id}"
    base.with_suffix(".json").write_text(json.dumps(doc, indent=2, ensure_ascii=False))
    with base.with_suffix(".csv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["trader_hash", "status", "before", "after", "changed", "reasons",
                         "verification_id"])
        for r in rows:
            writer.writerow([r["trader_hash"], r["status"], r.get("before") or "",
                             r.get("after") or "", "yes" if r.get("changed") else "no",
                             " ".join(r.get("reasons") or []), r.get("verification_id") or ""])
    return doc


def _pseudonymous(row: dict[str, Any], trader_id: str, tenant: str) -> dict[str, Any]:
    """A report row naming its trader by hash only (the job's result names it in clear)."""
    return {"trader_hash": trader_hash(trader_id, tenant),
            **{k: v for k, v in row.items() if k != "trader_id"}}


def run_tenant(store: Store, run_id: str) -> str | None:
    """The tenant of run ``run_id`` (``default`` for a run made before tenants), or None if
    there is no such run."""
    keys = RunKeys(store, run_id, "")
    tenant = cast(str | None, store.client.hget(keys.meta, "tenant"))
    if tenant:
        return tenant
    return "default" if store.client.exists(keys.meta, keys.items) else None


def reverify_command(settings: dict[str, Any], *, tenant: str, select_all: bool,
                     not_checked_days: int | None, verdicts: list[str],
                     input_path: Path | None, run_id: str | None, wait: bool,
                     timeout_s: float | None, report_dir: Path) -> int:
    """What ``trace30 reverify`` does for ``tenant``; returns the exit code (0 done, 3 still
    running)."""
    if not valid_tenant(tenant):
        raise BatchError(f"--tenant {tenant!r} is not a tenant id: lower-case letters, digits, "
                         "'-' and '_', at most 63 characters, as in TRACE30_GATEWAY_API_KEYS.")
    chosen = sum([select_all, not_checked_days is not None, bool(verdicts)])
    if input_path is not None and chosen:
        raise BatchError("Give either --input or a selection (--all, --not-checked-days, "
                         "--verdict), not both.")
    if input_path is None and not chosen and run_id is None:
        raise BatchError("Say which traders: --all, --not-checked-days N, --verdict V, or "
                         "--input FILE (or --run-id to resume a run).")
    conn = raw_connection(settings)
    store = connect(settings["REDIS_URL"], settings["REDIS_PREFIX"], settings["REDIS_TIMEOUT_S"])
    queue = Queue(queue_name(settings), connection=conn)
    items: dict[str, str] = {}
    if input_path is not None:
        subs = read_submissions(input_path)
        sealer = Sealer(check_keys(settings["EVIDENCE_SEALING_KEYS"], sandbox=settings["SANDBOX"]))
        # Submissions hold personal data: they wait in Redis sealed, like the evidence log.
        items = {t: sealer.seal(SubmissionSchema().dump(s)) for t, s in subs.items()}
        digest = hashlib.sha256(input_path.read_bytes()).hexdigest()
        run_id = run_id or _run_id(tenant, f"input:{digest}")
    elif chosen:
        ids = select_traders(settings, tenant=tenant,
                             not_checked_days=not_checked_days, verdicts=verdicts)
        items = dict.fromkeys(ids, "")
        run_id = run_id or _run_id(tenant, f"all={select_all};days={not_checked_days};"
                                           f"verdicts={sorted(verdicts)}")
    assert run_id is not None
    owner = run_tenant(store, run_id)
    if owner is not None and owner != tenant:
        raise BatchError(f"Run {run_id} re-verifies the traders of tenant {owner!r}, not "
                         f"{tenant!r}: resume it with --tenant {owner}, or choose another "
                         "--run-id.")
    queued = enqueue(settings, store, queue, run_id, items, tenant=tenant)
    total = store.client.hlen(RunKeys(store, run_id, tenant).items)
    click.echo(f"run {run_id} (tenant {tenant}): {total} trader(s), {queued} job(s) queued on "
               f"'{queue.name}'", err=True)
    if not wait:
        return 0
    finished = follow(settings, store, queue, run_id, timeout_s, tenant=tenant)
    doc = report(store, run_id, report_dir, tenant=tenant)
    click.echo(f"report: {report_dir / f'reverify-{run_id}'}.json and .csv", err=True)
    click.echo(json.dumps({k: doc[k] for k in ("run_id", "tenant", "total", "finished", "changed",
                                               "changes", "by_status")}, ensure_ascii=False))
    return 0 if finished else 3
