"""A batch run on PostgreSQL with several RQ workers as processes, one of them killed mid-run.

The evidence log is a PostgreSQL schema of the test's own (``pg_schema``), shared by the
in-process gateway that seeds the traders, three ``trace30 worker`` processes and the
``trace30 reverify`` follower, itself a process: what the CLI, the workers and the database do
when they are really several processes. Every trader is re-verified exactly once, none is
lost, and the report counts them all; when one worker is killed with SIGKILL while the run goes
on, the others and a restarted one finish it, and only the killed worker's trader may have been
verified twice.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis

from services.gateway.evidence import EvidenceLog
from services.gateway.sealing import SANDBOX_KEY
from shared.redis_client import Store
from tests.batch.conftest import Batch, trader
from tests.conftest import REDIS_URL, ROOT
from tests.gateway.evidence_fixtures import pg_schema, schema_url
from trace30.keys import RunKeys

pytestmark = pytest.mark.slow  # RQ workers and the follower as processes

TRADERS = 18
WORKERS = 3


@pytest.fixture
def pg_batch(batch: Batch) -> Iterator[Batch]:
    """The batch fixture with its evidence log in a PostgreSQL schema of its own."""
    with pg_schema() as schema:
        url = schema_url(schema)
        batch.env["TRACE30_DATABASE_URL"] = batch.config["DATABASE_URL"] = url
        yield batch
        batch.stop_workers()  # before the schema goes: a worker may be in a transaction


@pytest.mark.parametrize("kill", [False, True], ids=["all-live", "one-killed"])
def test_workers_on_postgresql_verify_each_trader_once(pg_batch: Batch, tmp_path: Path,
                                                       kill: bool) -> None:
    batch = pg_batch
    for _ in range(WORKERS):  # they start up while the traders are seeded
        batch.start_worker()
    traders = [trader(i) for i in range(100, 100 + TRADERS)]
    batch.suite.configure("vies-simulator",
                          overrides={t["vat_number"]: {"valid": True} for t in traders})
    seeded = batch.seed(traders)
    assert {s["verdict"] for s in seeded} == {"verified"}, [s["reasons"] for s in seeded]
    # Slow enough answers for the run to last while a worker is killed.
    batch.suite.configure("vies-simulator", latency_ms=300 if kill else 50)
    batch.suite.reset()  # forget the cached checks: the run asks VIES again
    started = datetime.now(UTC)

    run_id = f"{batch.token}-pg"
    out, err = (tmp_path / "follower.out").open("w"), (tmp_path / "follower.err").open("w")
    follower = subprocess.Popen(
        [sys.executable, "-m", "trace30.cli", "reverify", "--all", "--run-id", run_id,
         "--timeout", "90", "--report-dir", str(tmp_path)],
        cwd=ROOT, env={**os.environ, **batch.env}, stdout=out, stderr=err)
    store = Store(redis.Redis.from_url(REDIS_URL, decode_responses=True),
                  batch.env["TRACE30_REDIS_PREFIX"])
    keys = RunKeys(store, run_id, "default")
    try:
        if kill:  # a worker, once the run is well under way (every worker busy with a job)
            end = time.monotonic() + 60
            while store.client.hlen(keys.results) < TRADERS // 4:
                assert time.monotonic() < end, "the run did not get going"
                assert follower.poll() is None, (tmp_path / "follower.err").read_text()
                time.sleep(0.05)
            done_at_kill = store.client.hlen(keys.results)
            batch.kill(batch.workers[0])
            assert done_at_kill < TRADERS, "the run ended before a worker could be killed"
            batch.start_worker()  # a restarted worker joins the others
        assert follower.wait(120) == 0, (tmp_path / "follower.err").read_text()
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait()
        out.close()
        err.close()
        store.client.close()

    doc = json.loads((tmp_path / f"reverify-{run_id}.json").read_text())
    assert (doc["total"], doc["finished"], doc["failed"]) == (TRADERS, TRADERS, [])
    assert doc["by_status"] == {"done": TRADERS} and doc["changed"] == 0
    reported = {r["verification_id"] for r in doc["traders"]}
    assert len(reported) == TRADERS  # one verification of its own per trader

    # What the run wrote to PostgreSQL: one verification per trader, the one reported; the
    # killed worker's trader may have one more (its job ran again after the kill).
    log = EvidenceLog(batch.config["DATABASE_URL"], SANDBOX_KEY)  # the sandbox's key
    try:
        made = {t["trader_id"]: [r for r in log.history(t["trader_id"], tenant="default")
                                 if r.created_at >= started] for t in traders}
    finally:
        log.close()
    per_trader = Counter({tid: len(records) for tid, records in made.items()})
    settled = {r.id for records in made.values() for r in records if r.state == "settled"}
    assert reported <= settled
    assert min(per_trader.values()) == 1, per_trader
    # Each trader's VAT number was asked of VIES once (the killed job's at most twice).
    calls = batch.suite.stats("vies-simulator")["calls"]
    if kill:
        assert sum(per_trader.values()) <= TRADERS + 1, per_trader
        assert calls <= TRADERS + 1
    else:
        assert set(per_trader.values()) == {1}, per_trader
        assert reported == settled
        assert calls == TRADERS
