"""The retention purge: ``POST /v1/traders/{id}/end``, then ``trace30 purge`` (with and without
``--dry-run``) over the SQL evidence log, the gateway's Redis keys, batch runs and RQ jobs.

Traders are seeded through the gateway against the session's suite; their relationships are
ended through the endpoint, some seven or eight months ago (purged), one a month ago and one not
at all (kept).
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, timezone
from typing import Any

import click.testing
import pytest
import redis
import sqlalchemy as sa
from flask.testing import FlaskClient
from rq import Queue
from rq.job import Job, JobStatus
from rq.registry import FinishedJobRegistry
from rq.results import Result
from schwifty import IBAN
from stdnum.iso7064 import mod_11_10

import trace30.cli
import trace30.keys
from services.gateway import create_app, shutdown
from services.gateway.cache import CacheKeys, VerdictCache
from services.gateway.evidence import EvidenceLog, traders_table, verifications_table
from shared.config import load
from shared.logs import JsonFormatter
from shared.redis_client import Store
from shared.retention import purge_after as purge_after_of
from tests.conftest import REDIS_URL, free_port
from tests.gateway.conftest import API_KEY, ONBOARDING, OPS, OPS_KEY
from tests.gateway.evidence_fixtures import SEALING_KEYS, make_record
from trace30 import batch, jobs
from trace30.keys import RunKeys
from trace30.retention import (
    NO_REDIS,
    REDIS_KINDS,
    SQL_TABLES,
    PurgeError,
    purge,
    trader_hash,
)

RETENTION_MONTHS = 6
RUN = "20250101-retention"

#: the casework tables (migration 0008), empty for these traders
CASEWORK = dict.fromkeys(
    ("complaints", "statements", "reviews", "document_blobs", "documents"), 0)


def job_of(run: str, trader_id: str, store: Store) -> str:
    """The RQ job id of a trader of the default tenant in ``run``, in the store's deployment."""
    return trace30.keys.job_id(run, "default", trader_id, prefix=store.prefix)


def trader(name: str, i: int) -> dict[str, Any]:
    """A submission of its own (id, e-mail, IBAN, VAT number) that the simulators accept."""
    base = f"{82000000 + i * 7:08d}"
    return {
        "trader_id": f"{name}-{uuid.uuid4().hex[:8]}",
        "name": f"Handel {i} GmbH",
        "address": {"street": f"Hauptstr. {i}", "postcode": "10115", "city": "Berlin",
                    "country_code": "DE"},
        "email": f"owner{i}.{uuid.uuid4().hex[:6]}@handel.example",
        "phone": "+49 30 1234567",
        "identification": {"type": "eid"},
        "payment": {"iban": str(IBAN.generate("DE", bank_code="37040044",
                                              account_code=f"{6320130 + i:010d}")),
                    "account_holder": f"Handel {i} GmbH"},
        "vat_number": "DE" + base + mod_11_10.calc_check_digit(base),
        "self_certification": {"accepted": True},
    }


def personal_data(subs: list[dict[str, Any]]) -> list[str]:
    """What must never appear in a purge's report or logs."""
    out = []
    for sub in subs:
        out += [sub["trader_id"], sub["email"], sub["payment"]["iban"],
                sub["payment"]["iban"][-8:]]
    return out


def verify(http: FlaskClient, sub: dict[str, Any]) -> dict[str, Any]:
    resp = http.post("/v1/verifications", json=sub, headers={**ONBOARDING, "Prefer": "wait=15"})
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["state"] == "settled" and body["verdict"] != "pending", body
    return body


def end(http: FlaskClient, trader_id: str, ended_at: datetime | None = None,
        headers: dict[str, str] = OPS) -> Any:
    body = {"ended_at": ended_at.isoformat()} if ended_at else None
    return http.post(f"/v1/traders/{trader_id}/end", json=body, headers=headers)


def purge_settings(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """The settings ``trace30 purge`` would load for the test's gateway."""
    store: Store = config["REDIS_STORE"]
    return load({}, {"SANDBOX": True, "DATABASE_URL": config["DATABASE_URL"],
                     "REDIS_URL": REDIS_URL, "REDIS_PREFIX": store.prefix, **changes})


def rendered(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as the services log it (JSON, ``extra`` fields included)."""
    formatter = JsonFormatter("test")
    return "\n".join(formatter.format(r) for r in caplog.records)


def assert_no_personal_data(text: str, subs: list[dict[str, Any]]) -> None:
    for secret in personal_data(subs):
        assert secret not in text


@pytest.fixture
def rq_conn() -> Iterator[redis.Redis]:
    """RQ's connection (bytes, as RQ wants it)."""
    conn = redis.Redis.from_url(REDIS_URL)
    yield conn
    conn.close()


def backdate(client: FlaskClient, trader_ids: list[str], by: timedelta) -> None:
    """Move the traders' verifications into the past, as if they had been verified ``by``
    ago (a relationship can end only after the trader's first verification)."""
    log = client.application.extensions["trace30.gateway"].evidence
    v, t = verifications_table, traders_table
    with log.engine.begin() as conn:
        for table, column in ((v, v.c.created_at), (t, t.c.current_created_at)):
            for tid in trader_ids:
                old = conn.execute(sa.select(column).where(table.c.trader_id == tid)).scalars()
                for when in list(old):
                    conn.execute(sa.update(table).where(table.c.trader_id == tid,
                                                        column == when)
                                 .values({column.name: when - by}))


@dataclass
class Seeded:
    """Traders seeded through the gateway: ``old`` ended months ago, ``kept`` not so."""

    old: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    verifications: dict[str, dict[str, Any]]
    queue: Queue
    other_queue: Queue

    @property
    def everyone(self) -> list[dict[str, Any]]:
        return self.old + self.kept


@pytest.fixture
def seeded(client: FlaskClient, gateway_config: dict,
           store: Store, rq_conn: redis.Redis) -> Iterator[Seeded]:
    """Four traders: two ended 7 and 8 months ago, one a month ago, one still active.

    Each has, besides its verification (and the gateway's cached verdict and published
    result), the Redis entries a purge must find, written by their owners' code: a
    single-flight lock of the gateway's verdict cache, its place in a batch run (result, item,
    before, lease) and an RQ job.
    The first old trader's job has also run (it is finished, with a stored result), and a job
    of another deployment's queue carries its hash too.
    """
    now = datetime.now(UTC)
    subs = [trader("retention-old", 1), trader("retention-older", 2),
            trader("retention-recent", 3), trader("retention-active", 4)]
    verifications = {s["trader_id"]: verify(client, s) for s in subs}
    backdate(client, [s["trader_id"] for s in subs], timedelta(days=400))
    for sub, days in zip(subs, (213, 245, 30), strict=False):  # the fourth stays active
        resp = end(client, sub["trader_id"], now - timedelta(days=days))
        assert resp.status_code == 200, resp.get_json()

    settings = purge_settings(gateway_config)
    queue = Queue(trace30.keys.queue_name(settings), connection=rq_conn)
    other_queue = Queue("elsewhere-" + uuid.uuid4().hex[:8], connection=rq_conn)
    cache: VerdictCache = client.application.extensions["trace30.gateway"].cache
    run = RunKeys(store, RUN, "default")
    for sub in subs:
        tid = sub["trader_id"]
        vid, fp = verifications[tid]["id"], verifications[tid]["fingerprint"]
        assert cache.lead(fp, vid) is None  # a single-flight lock left behind
        jobs._record(run, tid, {"status": "done", "after": "verified"})
        store.client.hset(run.items, tid, "sealed-submission")
        store.client.hset(run.before, tid, "verified")
        store.client.set(run.lease(tid), "1")
        queue.enqueue("trace30.jobs.reverify_trader", RUN, tid, job_id=job_of(RUN, tid, store))
    store.client.hset(run.meta, "created_at", now.isoformat())

    # What a worker leaves of a job that has run: out of the queue, finished, with its result.
    first = subs[0]["trader_id"]
    done = Job.fetch(job_of(RUN, first, store), connection=rq_conn)
    queue.remove(done)
    done.set_status(JobStatus.FINISHED)
    FinishedJobRegistry(queue.name, connection=rq_conn).add(done, ttl=600)
    Result.create(done, Result.Type.SUCCESSFUL, ttl=600, return_value={"trader_id": first})
    other_queue.enqueue("trace30.jobs.reverify_trader", "otherrun", first,
                        job_id=job_of("otherrun", first, store))

    yield Seeded(subs[:2], subs[2:], verifications, queue, other_queue)

    for job_id in [job_of(r, s["trader_id"], store) for r in (RUN, "otherrun") for s in subs]:
        rq_conn.delete(f"rq:job:{job_id}", f"rq:results:{job_id}")
    for q in (queue, other_queue):
        q.delete(delete_jobs=True)
        rq_conn.delete(FinishedJobRegistry(q.name, connection=rq_conn).key)


def redis_state(store: Store, seeded: Seeded, sub: dict[str, Any]) -> dict[str, bool]:
    """Which of the trader's Redis entries exist."""
    tid = sub["trader_id"]
    vid = seeded.verifications[tid]["id"]
    fp = seeded.verifications[tid]["fingerprint"]
    cache, run, c = CacheKeys(store), RunKeys(store, RUN, "default"), store.client
    job_id = job_of(RUN, tid, store)
    return {
        "verdict": bool(c.exists(cache.verdict(fp))),
        "inflight": bool(c.exists(cache.inflight(fp))),
        "result": bool(c.exists(cache.result(vid))),
        "batch result": bool(c.hexists(run.results, tid)),
        "batch item": bool(c.hexists(run.items, tid)),
        "batch before": bool(c.hexists(run.before, tid)),
        "lease": bool(c.exists(run.lease(tid))),
        "job": bool(seeded.queue.connection.exists(f"rq:job:{job_id}")),
        "queued": job_id in seeded.queue.get_job_ids()
        or job_id in FinishedJobRegistry(seeded.queue.name,
                                         connection=seeded.queue.connection).get_job_ids(),
    }


EXPECTED_PER_TRADER = {
    "gateway:verdict": 1, "gateway:inflight": 1, "gateway:result": 1, "batch:results": 1,
    "batch:items": 1, "batch:before": 1, "batch:lease": 1, "rq:jobs": 1,
}


def test_purge_dry_run_lists_then_purge_deletes_only_the_old_traders(
    seeded: Seeded, client: FlaskClient, gateway_config: dict, store: Store,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = purge_settings(gateway_config)
    old_hashes = [trader_hash(s["trader_id"], "default") for s in seeded.old]
    everyone = {s["trader_id"]: redis_state(store, seeded, s) for s in seeded.everyone}
    assert all(all(state.values()) for state in everyone.values()), everyone

    caplog.set_level(logging.INFO)
    caplog.clear()
    dry = purge(settings, retention_months=RETENTION_MONTHS, dry_run=True)
    dry_logs = rendered(caplog)  # the purge's records only (the gateway's log its paths)

    # Listed (oldest end first), counted, and nothing deleted.
    assert dry.dry_run and dry.redis_skipped is None
    assert dry.traders == old_hashes[::-1]
    # staff_actions: each trader's recorded end of relationship goes too
    # a rejected trader has its statement of reasons (Art 17), purged with it
    rejected = sum(seeded.verifications[s["trader_id"]]["verdict"] == "rejected"
                   for s in seeded.old)
    assert dry.sql == {"webhook_attempts": 0, "webhook_deliveries": 0, "staff_actions": 2,
                       **CASEWORK, "statements": rejected, "traders": 2, "verifications": 2}
    first, second = old_hashes
    first_tid = seeded.old[0]["trader_id"]
    assert seeded.queue.connection.exists(f"rq:results:{job_of(RUN, first_tid, store)}")
    assert dry.by_trader[first]["redis"] == {**EXPECTED_PER_TRADER, "rq:results": 1}
    assert dry.by_trader[second]["redis"] == {**EXPECTED_PER_TRADER, "rq:results": 0}
    assert {s["trader_id"]: redis_state(store, seeded, s) for s in seeded.everyone} == everyone
    for sub in seeded.everyone:
        assert client.get(f"/v1/traders/{sub['trader_id']}", headers=OPS).status_code == 200
    summary = dry.summary()
    assert "DRY RUN" in summary and "would be deleted" in summary
    assert all(h in summary for h in old_hashes)
    assert "verifications=2" in summary
    assert_no_personal_data(summary, seeded.everyone)
    assert all(h in dry_logs for h in old_hashes)
    assert_no_personal_data(dry_logs, seeded.everyone)

    caplog.clear()
    done = purge(settings, retention_months=RETENTION_MONTHS, dry_run=False)
    done_logs = rendered(caplog)

    # The dry run's counts were exactly what the purge deletes.
    assert (done.traders, done.sql, done.redis) == (dry.traders, dry.sql, dry.redis)
    assert not done.dry_run
    for sub in seeded.old:
        tid = sub["trader_id"]
        assert client.get(f"/v1/traders/{tid}", headers=OPS).status_code == 404
        assert client.get(f"/v1/traders/{tid}/history", headers=OPS).status_code == 404
        assert not any(redis_state(store, seeded, sub).values())
    for sub in seeded.kept:
        tid = sub["trader_id"]
        current = client.get(f"/v1/traders/{tid}", headers=OPS).get_json()
        assert current["id"] == seeded.verifications[tid]["id"]
        assert redis_state(store, seeded, sub) == everyone[tid]
    assert not seeded.queue.connection.exists(f"rq:results:{job_of(RUN, first_tid, store)}")
    # The run itself, and another deployment's job with the same trader hash, are untouched.
    assert store.client.hgetall(store.key("batch", RUN, "meta"))
    assert seeded.other_queue.get_job_ids() == [job_of("otherrun", seeded.old[0]["trader_id"],
                                                        store)]
    summary = done.summary()
    assert "DRY RUN" not in summary and "2 trader(s) deleted" in summary
    assert_no_personal_data(summary, seeded.everyone)
    assert all(h in done_logs for h in old_hashes)
    assert "trace30.retention" in done_logs and "services.gateway.evidence" in done_logs
    assert_no_personal_data(done_logs, seeded.everyone)

    again = purge(settings, retention_months=RETENTION_MONTHS, dry_run=False)
    assert again.traders == [] and "nothing deleted" in again.summary()
    # A shorter retention (none at all) reaches the trader that ended a month ago.
    assert purge(settings, retention_months=0, dry_run=True).traders == [
        trader_hash(seeded.kept[0]["trader_id"], "default")]


def test_purge_command(seeded: Seeded, gateway_config: dict, store: Store,
                       client: FlaskClient) -> None:
    """``trace30 purge`` with the settings from the environment, as an operator runs it."""
    env: dict[str, str | None] = {k: None for k in os.environ if k.startswith("TRACE30_")}
    env.update({"TRACE30_SANDBOX": "1", "TRACE30_DATABASE_URL": gateway_config["DATABASE_URL"],
                "TRACE30_REDIS_URL": REDIS_URL, "TRACE30_REDIS_PREFIX": store.prefix})
    runner = click.testing.CliRunner()
    old_hashes = [trader_hash(s["trader_id"], "default") for s in seeded.old]

    dry = runner.invoke(trace30.cli.main, ["purge", "--dry-run"], env=env)
    assert dry.exit_code == 0, dry.output
    assert "DRY RUN" in dry.output and all(h in dry.output for h in old_hashes)
    assert_no_personal_data(dry.output, seeded.everyone)
    for sub in seeded.everyone:
        assert client.get(f"/v1/traders/{sub['trader_id']}", headers=OPS).status_code == 200

    # The retired day count is refused, not silently ignored.
    stale = runner.invoke(trace30.cli.main, ["purge"], env={**env,
                                                           "TRACE30_RETENTION_DAYS": "183"})
    assert stale.exit_code != 0 and "TRACE30_RETENTION_MONTHS" in stale.output
    # --retention-months overrides TRACE30_RETENTION_MONTHS (here: 10 years, so nobody yet).
    none = runner.invoke(trace30.cli.main, ["purge"], env={**env,
                                                          "TRACE30_RETENTION_MONTHS": "120"})
    assert none.exit_code == 0 and "nothing deleted" in none.output
    real = runner.invoke(trace30.cli.main, ["purge", "--retention-months", "6"],
                         env={**env, "TRACE30_RETENTION_MONTHS": "120"})
    assert real.exit_code == 0, real.output
    assert "2 trader(s) deleted" in real.output and "verifications=2" in real.output
    assert_no_personal_data(real.output, seeded.everyone)
    for sub in seeded.old:
        assert client.get(f"/v1/traders/{sub['trader_id']}", headers=OPS).status_code == 404
        assert not any(redis_state(store, seeded, sub).values())
    for sub in seeded.kept:
        assert client.get(f"/v1/traders/{sub['trader_id']}", headers=OPS).status_code == 200


def test_purge_without_redis_deletes_sql_only(database_url: str,
                                              caplog: pytest.LogCaptureFixture) -> None:
    """On SQLite and PostgreSQL: webhook rows go too, and the dry run counts them exactly."""
    log = EvidenceLog(database_url, SEALING_KEYS)
    log.migrate()
    now = datetime.now(UTC)
    try:
        for vid, tid in (("v-old-1", "shop-old"), ("v-old-2", "shop-old"), ("v-new", "shop-new")):
            log.save(make_record(vid, tid), private_submission={"email": "x@shop.example"})
            delivery = log.enqueue_webhook(client_id="shop", url="http://127.0.0.1:9/hook",
                                           event="verification.settled", payload={"id": vid},
                                           verification_id=vid, trader_id=tid, tenant="default")
            log.record_attempt(delivery, status_code=500, error=None, duration_ms=3.0,
                               delivered=False, next_attempt_at=now)
        assert log.end_relationship("shop-old", now - timedelta(days=200), tenant="default")
        assert log.end_relationship("shop-new", now - timedelta(days=10), tenant="default")
    finally:
        log.close()
    settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                         "DATABASE_URL": database_url, "REDIS_URL": None})
    caplog.set_level(logging.INFO)

    dry = purge(settings, retention_months=RETENTION_MONTHS, dry_run=True, now=now)
    done = purge(settings, retention_months=RETENTION_MONTHS, dry_run=False, now=now)

    expected = {"webhook_attempts": 2, "webhook_deliveries": 2, "staff_actions": 0,
                **CASEWORK, "traders": 1, "verifications": 2}
    assert dry.sql == done.sql == expected
    assert dry.traders == done.traders == [trader_hash("shop-old", "default")]
    assert done.redis_skipped == NO_REDIS and done.redis == dict.fromkeys(REDIS_KINDS, 0)
    assert NO_REDIS in done.summary()
    assert list(done.sql) == list(SQL_TABLES)
    log = EvidenceLog(database_url, SEALING_KEYS)
    try:
        assert log.history("shop-old", tenant="default") == []
        assert [r.id for r in log.history("shop-new", tenant="default")] == ["v-new"]
        assert len(log.deliveries("v-new")) == 1 and log.deliveries("v-old-1") == []
    finally:
        log.close()
    assert "shop-old" not in rendered(caplog) and "shop-old" not in done.summary()
    with pytest.raises(ValueError, match="aware"):
        purge(settings, retention_months=1, dry_run=True, now=datetime(2025, 1, 1))


@pytest.mark.parametrize(("ends", "before", "due_before", "from_", "due_from"), [
    # 29, 30 and 31 August all reach 28 February (2026 has no 29th); 1 September, 1 March
    (["2025-08-27", "2025-08-28", "2025-08-29", "2025-08-30", "2025-08-31", "2025-09-01"],
     "2026-02-27T23:59:59", ["2025-08-27"],
     "2026-02-28T00:00:00", ["2025-08-27", "2025-08-28", "2025-08-29", "2025-08-30",
                             "2025-08-31"]),
    # a leap year: 29 and 31 August 2023 reach 29 February 2024, not the 28th
    (["2023-08-28", "2023-08-29", "2023-08-31", "2023-09-01"],
     "2024-02-28T23:59:59", ["2023-08-28"],
     "2024-02-29T00:00:00", ["2023-08-28", "2023-08-29", "2023-08-31"]),
    # across the turn of the year, from a month of 31 days to one of 30
    (["2025-12-30", "2025-12-31", "2026-01-01"],
     "2026-06-29T12:00:00", [],
     "2026-06-30T00:00:00", ["2025-12-30", "2025-12-31"]),
])
def test_purge_counts_calendar_months_with_the_end_of_month_clamped(
        tmp_path, ends: list[str], before: str, due_before: list[str], from_: str,
        due_from: list[str]) -> None:
    """Every trader ended late on its day (23:30 UTC): the day counts, not the hour."""
    url = f"sqlite:///{tmp_path / 'evidence.sqlite3'}"
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    try:
        first = datetime(2023, 1, 2, tzinfo=UTC)  # verified before any of the ends
        for i, day in enumerate(ends):
            log.save(make_record(f"v-{i}", f"shop-{day}", created_at=first, settled_at=first,
                                 checked_at=first))
            ended = datetime.fromisoformat(day).replace(hour=23, minute=30, tzinfo=UTC)
            assert log.end_relationship(f"shop-{day}", ended, tenant="default")
    finally:
        log.close()
    settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                         "DATABASE_URL": url, "REDIS_URL": None})

    def at(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    def hashes(days: list[str]) -> list[str]:
        return [trader_hash(f"shop-{day}", "default") for day in days]

    assert purge(settings, retention_months=6, dry_run=True, now=at(before)).traders == hashes(
        due_before)
    assert purge(settings, retention_months=6, dry_run=True, now=at(from_)).traders == hashes(
        due_from)
    # Deleting goes by the same rule as listing; the others stay.
    done = purge(settings, retention_months=6, dry_run=False, now=at(from_))
    assert done.traders == hashes(due_from)
    log = EvidenceLog(url, SEALING_KEYS)
    try:
        assert log.ended_before(at("2100-01-01T00:00:00")) == [
            ("default", f"shop-{day}") for day in ends if day not in due_from]
    finally:
        log.close()


def test_purge_stops_without_deleting_sql_when_redis_is_down(tmp_path) -> None:
    """SQL goes last: a purge that cannot reach Redis leaves the trader listed for the next."""
    url = f"sqlite:///{tmp_path / 'evidence.sqlite3'}"
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    try:
        log.save(make_record("v-1", "shop-gone"))
        log.end_relationship("shop-gone", datetime.now(UTC) - timedelta(days=400), tenant="default")
        settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                             "DATABASE_URL": url, "REDIS_TIMEOUT_S": 0.2,
                             "REDIS_URL": f"redis://127.0.0.1:{free_port()}/0"})
        with pytest.raises(redis.ConnectionError):
            purge(settings, retention_months=RETENTION_MONTHS, dry_run=False)
        assert log.ended_before(datetime.now(UTC)) == [("default", "shop-gone")]
        assert [r.id for r in log.history("shop-gone", tenant="default")] == ["v-1"]
    finally:
        log.close()


def test_a_failing_trader_stops_the_purge_without_naming_it(
    tmp_path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    """Database errors quote the statement's parameters: the error names the hash instead."""
    url = f"sqlite:///{tmp_path / 'evidence.sqlite3'}"
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    now = datetime.now(UTC)
    try:
        for i, tid in enumerate(("shop-first", "shop-second")):
            log.save(make_record(f"v-{i}", tid))
            log.end_relationship(tid, now - timedelta(days=400 - i), tenant="default")
    finally:
        log.close()
    real = EvidenceLog.purge_traders

    def flaky(self: EvidenceLog, traders: Any, **kwargs: Any) -> Any:
        if ("default", "shop-second") in traders:  # the batch, then the trader alone
            raise sa.exc.OperationalError("DELETE FROM traders WHERE trader_id = ?",
                                          ("shop-second",), Exception("disk I/O error"))
        return real(self, traders, **kwargs)

    monkeypatch.setattr(EvidenceLog, "purge_traders", flaky)
    settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                         "DATABASE_URL": url, "REDIS_URL": None})
    caplog.set_level(logging.INFO)
    with pytest.raises(PurgeError) as caught:
        purge(settings, retention_months=RETENTION_MONTHS, dry_run=False, now=now)
    assert trader_hash("shop-second", "default") in str(caught.value) and "OperationalError" in str(
        caught.value)
    assert caught.value.report.traders == [trader_hash("shop-first", "default")]
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert "shop-" not in str(caught.value) and "shop-" not in rendered(caplog)


# -- POST /v1/traders/{id}/end ----------------------------------------------------------------


def test_end_relationship_records_when_and_when_the_purge_may_delete(
    client: FlaskClient,
) -> None:
    sub = trader("retention-end", 5)
    verify(client, sub)
    url = f"/v1/traders/{sub['trader_id']}/end"

    before = datetime.now(UTC)
    resp = client.post(url, headers=ONBOARDING)  # no body: it ended now
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    ended_at = datetime.fromisoformat(body["ended_at"])
    assert body["trader_id"] == sub["trader_id"]
    assert before <= ended_at <= datetime.now(UTC)
    purge_after = datetime.fromisoformat(body["purge_after"])
    # six calendar months: 181 to 184 days after the day it ended, from midnight UTC on
    assert purge_after.time() == time(0) and purge_after.utcoffset() == timedelta(0)
    assert 181 <= (purge_after.date() - ended_at.date()).days <= 184

    when = ended_at.replace(microsecond=0) + timedelta(seconds=1)
    resp = end(client, sub["trader_id"], when.astimezone(timezone(timedelta(hours=2))))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"trader_id": sub["trader_id"],
                               "ended_at": when.isoformat(),
                               "purge_after": purge_after_of(when, 6).isoformat()}
    # A clock a little ahead of ours is accepted.
    assert end(client, sub["trader_id"], datetime.now(UTC) + timedelta(seconds=30)).status_code \
        == 200


def test_end_relationship_before_the_first_verification_is_refused(
    client: FlaskClient,
) -> None:
    """Finding 4: ``ended_at`` accepted year 1, making a trader purgeable at once."""
    sub = trader("retention-early-end", 7)
    verify(client, sub)
    evidence = client.application.extensions["trace30.gateway"].evidence
    first = evidence.first_verification_at(sub["trader_id"], tenant="default")
    resp = end(client, sub["trader_id"], first - timedelta(seconds=1))
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    assert list(resp.get_json()["errors"]) == ["ended_at"]
    assert first.isoformat() in resp.get_json()["errors"]["ended_at"][0]
    assert evidence.ended_before(datetime.now(UTC) + timedelta(days=2)) == []  # nothing ended
    assert end(client, sub["trader_id"], first).status_code == 200


@pytest.mark.parametrize(("ended", "purged"), [
    # the end of a month with no such day six months on: the last day of that month
    ("2025-08-31T18:30:00+00:00", "2026-02-28T00:00:00+00:00"),
    ("2023-08-31T00:00:00+00:00", "2024-02-29T00:00:00+00:00"),  # a leap year
    ("2025-03-31T09:00:00+00:00", "2025-09-30T00:00:00+00:00"),
    ("2025-12-31T23:59:59+00:00", "2026-06-30T00:00:00+00:00"),
    ("2025-09-01T00:30:00+02:00", "2026-02-28T00:00:00+00:00"),  # 31 August in UTC
    ("2025-03-01T12:00:00+00:00", "2025-09-01T00:00:00+00:00"),
])
def test_purge_after_counts_calendar_months(client: FlaskClient,
                                            ended: str, purged: str) -> None:
    """A trader verified since 2023 (its first verification kept in the evidence log)."""
    log = client.application.extensions["trace30.gateway"].evidence
    first = datetime(2023, 1, 2, tzinfo=UTC)
    log.save(make_record("v-since-2023", "since-2023", created_at=first, settled_at=first,
                         checked_at=first))
    resp = end(client, "since-2023", datetime.fromisoformat(ended))
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json()["purge_after"] == purged


def test_end_relationship_of_an_unknown_trader_is_404(client: FlaskClient) -> None:
    resp = client.post("/v1/traders/nobody-here/end", headers=OPS)
    assert resp.status_code == 404
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["status"] == 404


@pytest.mark.parametrize("ended_at", [
    (datetime.now(UTC) + timedelta(days=1)).isoformat(),  # the future
    "2025-03-01T12:00:00",  # naive: whose noon?
    "yesterday",
])
def test_end_relationship_refuses_a_bad_ended_at(client: FlaskClient,
                                                 ended_at: str) -> None:
    sub = trader("retention-bad-end", 6)
    verify(client, sub)
    resp = client.post(f"/v1/traders/{sub['trader_id']}/end", json={"ended_at": ended_at},
                       headers=OPS)
    assert resp.status_code == 400
    assert resp.mimetype == "application/problem+json"
    assert list(resp.get_json()["errors"]) == ["ended_at"]
    assert "ended_at" in resp.get_json()["detail"]
    evidence = client.application.extensions["trace30.gateway"].evidence
    assert evidence.ended_before(datetime.now(UTC) + timedelta(days=2)) == []  # nothing ended


def test_end_relationship_needs_the_onboarding_or_ops_scope(gateway_config: dict) -> None:
    keys = [{"id": "shop", "key": API_KEY, "scopes": ["onboarding"]},
            {"id": "staff", "key": OPS_KEY, "scopes": ["ops"]},
            {"id": "batch", "key": "batch-only-key", "scopes": ["batch"]}]
    app = create_app({**gateway_config, "GATEWAY_API_KEYS": json.dumps(keys)})
    try:
        client = app.test_client()
        resp = client.post("/v1/traders/anyone/end",
                           headers={"Authorization": "Bearer batch-only-key"})
        assert resp.status_code == 403
        assert "onboarding or ops" in resp.get_json()["detail"]
        assert client.post("/v1/traders/anyone/end").status_code == 401
        for headers in (ONBOARDING, OPS):  # past the scope check: unknown trader
            assert client.post("/v1/traders/anyone/end", headers=headers).status_code == 404
    finally:
        shutdown(app)


# -- tenants ------------------------------------------------------------------------------------


def test_purge_deletes_one_tenants_ended_trader_and_keeps_the_others_of_the_same_id(
    gateway_config: dict, store: Store, rq_conn: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """shop-a ended its relationship with a trader months ago; shop-b still trades with a
    trader of the same id and the same data. The purge deletes shop-a's, in SQL and in Redis
    (verdict cache by shop-a's fingerprint, shop-a's batch runs and jobs), and nothing of
    shop-b's; its report counts per tenant and names no trader."""
    keys = [{"id": f"{t}-staff", "key": f"purge-test-{t}-key", "tenant": t,
             "scopes": ["onboarding", "ops"]} for t in ("shop-a", "shop-b")]
    app = create_app({**gateway_config, "GATEWAY_API_KEYS": json.dumps(keys)})
    http = app.test_client()
    a_key = {"Authorization": "Bearer purge-test-shop-a-key", "Prefer": "wait=15"}
    b_key = {"Authorization": "Bearer purge-test-shop-b-key", "Prefer": "wait=15"}
    sub = trader("retention-tenant", 7)
    tid = sub["trader_id"]
    cache = CacheKeys(store)
    runs = {"shop-a": f"shop-a-{RUN}", "shop-b": f"shop-b-{RUN}"}
    queue = Queue(trace30.keys.queue_name(purge_settings(gateway_config)), connection=rq_conn)
    try:
        found = {}
        for tenant, headers in (("shop-a", a_key), ("shop-b", b_key)):
            resp = http.post("/v1/verifications", json=sub, headers=headers)
            assert resp.status_code == 200 and resp.get_json()["cached"] is False
            found[tenant] = resp.get_json()
            run = RunKeys(store, runs[tenant], tenant)
            store.client.hset(run.meta, "tenant", tenant)
            store.client.hset(run.results, tid, json.dumps({"trader_id": tid}))
            store.client.hset(run.items, tid, "sealed-submission")
            store.client.set(run.lease(tid), "1")
            queue.enqueue("trace30.jobs.reverify_trader", run.run_id, tid, tenant,
                          job_id=run.job_id(tid))
        a, b = found["shop-a"], found["shop-b"]
        assert a["fingerprint"] != b["fingerprint"]
        backdate(http, [tid], timedelta(days=400))
        resp = http.post(f"/v1/traders/{tid}/end", headers=a_key, json={
            "ended_at": (datetime.now(UTC) - timedelta(days=200)).isoformat()})
        assert resp.status_code == 200
        assert store.client.exists(cache.verdict(a["fingerprint"]))

        caplog.set_level(logging.INFO)
        caplog.clear()  # the purge's records only (the gateway's name its paths)
        report = purge(purge_settings(gateway_config), retention_months=RETENTION_MONTHS,
                       dry_run=False)

        hashed = trader_hash(tid, "shop-a")
        assert report.traders == [hashed] and report.by_tenant == {"shop-a": 1}
        assert report.tenant_of == {hashed: "shop-a"}
        assert report.sql == {"webhook_attempts": 0, "webhook_deliveries": 0,
                              "staff_actions": 1, **CASEWORK,
                              "statements": int(a["verdict"] == "rejected"),
                              "traders": 1, "verifications": 1}
        assert {kind: n for kind, n in report.redis.items() if n} == {
            "gateway:verdict": 1, "gateway:result": 1, "batch:results": 1, "batch:items": 1,
            "batch:lease": 1, "rq:jobs": 1}
        summary = report.summary()
        assert "per tenant: shop-a=1" in summary and f"{hashed}  tenant=shop-a" in summary
        assert_no_personal_data(summary + rendered(caplog), [sub])
        # shop-a's trader is gone, everywhere
        assert http.get(f"/v1/traders/{tid}", headers=a_key).status_code == 404
        assert http.get(f"/v1/verifications/{a['id']}", headers=b_key).status_code == 404
        assert not store.client.exists(cache.verdict(a["fingerprint"]))
        assert not store.client.hexists(RunKeys(store, runs["shop-a"], "shop-a").results, tid)
        run_a = RunKeys(store, runs["shop-a"], "shop-a")
        assert not rq_conn.exists(f"rq:job:{run_a.job_id(tid)}")
        # shop-b's trader of the same id is all there
        current = http.get(f"/v1/traders/{tid}", headers=b_key)
        assert current.status_code == 200 and current.get_json()["id"] == b["id"]
        assert store.client.exists(cache.verdict(b["fingerprint"]))
        assert store.client.exists(cache.result(b["id"]))
        run_b = RunKeys(store, runs["shop-b"], "shop-b")
        assert store.client.hexists(run_b.results, tid)
        assert store.client.hexists(run_b.items, tid)
        assert store.client.exists(run_b.lease(tid))
        assert run_b.job_id(tid) in queue.get_job_ids()
        again = http.post("/v1/verifications", json=sub, headers=b_key).get_json()
        assert again["cached"] is True and again["id"] == b["id"]
    finally:
        shutdown(app)
        queue.delete(delete_jobs=True)


# -- key layouts: the purge asks their owners ---------------------------------------------------

#: Each key layout the purge must find, renamed in its owner (and nowhere else).
LAYOUT_RENAMES: dict[str, tuple[object, str, str]] = {
    "verdict cache namespace": (CacheKeys, "NAMESPACE", "gateway-v2"),
    "cached verdict": (CacheKeys, "VERDICT", "verdict-v2"),
    "single-flight lock": (CacheKeys, "INFLIGHT", "inflight-v2"),
    "published result": (CacheKeys, "RESULT", "result-v2"),
    "batch namespace": (RunKeys, "NAMESPACE", "batch-v2"),
    "run meta": (RunKeys, "META", "meta-v2"),
    "run items": (RunKeys, "ITEMS", "items-v2"),
    "run results": (RunKeys, "RESULTS", "results-v2"),
    "run verdicts before": (RunKeys, "BEFORE", "before-v2"),
    "lease": (RunKeys, "LEASE", "lease-v2"),
    "job ids": (trace30.keys, "JOB_ID_PREFIX", "reverify-v2-"),
}


def redis_contents(store: Store, rq_conn: redis.Redis, queue: Queue) -> dict[str, Any]:
    """Every key under the store's prefix (a hash with its fields, a string with its value),
    the queue's job ids and every RQ job key."""
    out: dict[str, Any] = {}
    for key in store.client.scan_iter(match=trace30.keys.glob_escape(store.prefix) + "*"):
        kind = store.client.type(key)
        out[key] = (sorted(store.client.hkeys(key)) if kind == "hash"
                    else store.client.get(key) if kind == "string" else kind)
    out["rq queue"] = sorted(queue.get_job_ids())
    out["rq jobs"] = sorted(k.decode() for k in rq_conn.scan_iter(match="rq:job:*")
                            if rq_conn.type(k) == b"hash"
                            and rq_conn.hget(k, "origin") == queue.name.encode())
    return out


@pytest.mark.parametrize("rename", [None, *LAYOUT_RENAMES])
def test_the_purge_finds_what_the_key_owners_write(
    rename: str | None, tmp_path, store: Store, rq_conn: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The verdict cache, a batch run, its job and its lease are written by their owners' own
    code for two traders, one ended long ago. With any layout renamed in its owner only, the
    dry run counts every entry of the ended trader without deleting anything, the purge deletes
    exactly those, nothing left in Redis names the trader, and the other trader keeps all."""
    if rename is not None:
        monkeypatch.setattr(*LAYOUT_RENAMES[rename])
    url = f"sqlite:///{tmp_path / 'evidence.sqlite3'}"
    gone, stays = "shop-gone", "shop-stays"
    log = EvidenceLog(url, SEALING_KEYS)
    log.migrate()
    try:
        for trader_id in (gone, stays):
            log.save(make_record(f"v-{trader_id}", trader_id))
        assert log.end_relationship(gone, datetime.now(UTC) - timedelta(days=400),
                                    tenant="default")
    finally:
        log.close()
    settings = load({}, {"SANDBOX": False, "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                         "DATABASE_URL": url, "REDIS_URL": REDIS_URL,
                         "REDIS_PREFIX": store.prefix})
    queue = Queue(trace30.keys.queue_name(settings), connection=rq_conn)
    cache = VerdictCache(store, 600, lock_ttl_s=600)
    run = RunKeys(store, RUN, "default")
    try:
        for trader_id in (gone, stays):
            vid = f"v-{trader_id}"
            cache.put(f"fp-{vid}", {"id": vid, "verdict": "verified"})
            cache.publish(vid, {"id": vid, "verdict": "verified"})
            assert cache.lead(f"fp-{vid}", vid) is None
        assert batch.enqueue(settings, store, queue, RUN, {gone: "sealed", stays: "sealed"},
                             tenant="default") == 2
        for trader_id in (gone, stays):
            store.client.hsetnx(run.before, trader_id, "verified")
            jobs._record(run, trader_id, {"status": "done", "after": "verified"})
        with jobs._lease(store, run.lease(gone), 600), jobs._lease(store, run.lease(stays), 600):
            before = redis_contents(store, rq_conn, queue)
            dry = purge(settings, retention_months=RETENTION_MONTHS, dry_run=True)
            assert redis_contents(store, rq_conn, queue) == before
            done = purge(settings, retention_months=RETENTION_MONTHS, dry_run=False)
            after = redis_contents(store, rq_conn, queue)
    finally:
        queue.delete(delete_jobs=True)

    assert dry.traders == done.traders == [trader_hash(gone, "default")]
    assert dry.redis == done.redis == {**dict.fromkeys(REDIS_KINDS, 1), "rq:results": 0}
    assert dry.sql == done.sql
    # Nothing names the ended trader any more; the other trader's entries are all there.
    names_gone = (gone, f"v-{gone}", trader_hash(gone, "default"))
    assert not [key for key, value in after.items()
                if any(n in key or n in str(value) for n in names_gone)], after
    assert [key for key in before if any(n in key for n in names_gone)], before
    kept = {key: value for key, value in before.items()
            if not any(n in key for n in names_gone)}
    assert {key: after[key] for key in kept} == {
        key: [v for v in value if not any(n in v for n in names_gone)]
        if isinstance(value, list) else value
        for key, value in kept.items()}
