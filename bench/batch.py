"""Batch re-verification against VIES's limits, against the ceiling those limits allow.

5,000 traders (VAT numbers spread over several member states) are re-verified by RQ workers
through the suite, with the VIES simulator at latency L and a per-member-state cap C (the
simulator answers MS_MAX_CONCURRENT_REQ past it, as VIES does; the VAT service's shared Redis
limiter is set to the same C). The ceiling is states x C / L traders per second. Printed: the
achieved rate, its ratio to the ceiling (target >= 0.9) and the MS_MAX_CONCURRENT_REQ faults
provoked (target 0). Also: how long a seller signing up during the run waits for a VAT check
of a member state the batch keeps busy (checks of its own, every 20 s, as a signup and as
batch work).

Run: ``.venv/bin/python bench/batch.py [--traders 5000]`` (needs Redis on 127.0.0.1:6379 and
PostgreSQL on 127.0.0.1:5432, or ``TRACE30_BENCH_DATABASE_URL``).
The traders are written to the evidence log directly (seeding is not what is measured).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from datetime import UTC, datetime

import redis
import requests
import sqlalchemy as sa
from _harness import ROOT, free_port, gunicorn, start, stop
from rq import Queue, Worker
from sqlalchemy.pool import NullPool
from stdnum.eu import vat

from services.gateway import submissions
from services.gateway.evidence import EvidenceLog, VerificationRecord
from services.gateway.sealing import SANDBOX_KEY
from trace30.suite import moved_urls

PG_URL = os.environ.get("TRACE30_BENCH_DATABASE_URL",
                        "postgresql+psycopg://postgres@127.0.0.1:5432/test")
STATES = ["DE", "AT", "DK", "FI", "PL"]
LATENCY_S = 1.0
CAP = 2
WORKERS = 48
PROBE_EVERY_S = 20.0


def numbers(country: str, count: int, rng: random.Random) -> list[str]:
    """``count`` distinct checksum-valid VAT numbers of ``country``."""
    width = {"DE": 9, "AT": 8, "DK": 8, "FI": 8, "PL": 10}[country]
    prefix = "ATU" if country == "AT" else country
    found: set[str] = set()
    while len(found) < count:
        candidate = prefix + "".join(rng.choice("0123456789") for _ in range(width))
        if candidate[len(prefix)] != "0" and vat.is_valid(candidate):
            found.add(candidate)
    return sorted(found)


def seed(url: str, count: int) -> None:
    rng = random.Random(30)
    per_state = -(-count // len(STATES))
    by_state = [numbers(s, per_state, rng) for s in STATES]
    # Interleaved, as a real population is mixed (all of one state first would leave every
    # other state's slots idle while the first state's cap is the bottleneck).
    vats = [n for group in zip(*by_state, strict=True) for n in group][:count]
    log = EvidenceLog(url, SANDBOX_KEY)
    log.migrate()
    now = datetime.now(UTC)
    for i, number in enumerate(vats):
        sub = {"trader_id": f"bench-{i:05d}", "name": f"Trader {i} GmbH",
               "address": {"street": "Main 1", "postcode": "1000", "city": "City",
                           "country_code": number[:2]},
               "email": f"t{i}@example.com", "phone": "+49 30 1234567",
               "identification": {"type": "eid"},
               "payment": {"iban": "DE89370400440532013000"},
               "vat_number": number, "self_certification": {"accepted": True}}
        record = VerificationRecord(
            id=uuid.uuid4().hex, trader_id=sub["trader_id"], client_id="sandbox",
            fingerprint=submissions.fingerprint(sub, "default"), state="settled",
            verdict="verified", items={}, reasons=[], checks={}, name_consistency={},
            evidence={}, submission=submissions.redact(sub), account_fingerprint=None,
            request_id=None, created_at=now, settled_at=now, checked_at=now, expires_at=None)
        log.save(record, private_submission=sub)
    log.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--traders", type=int, default=5000)
    count = parser.parse_args().traders
    prefix = f"trace30bench:{uuid.uuid4().hex[:8]}:"
    tmp = tempfile.mkdtemp(prefix="trace30batch")
    # PostgreSQL, as a deployment with many workers would use (SQLite serialises every write
    # of every worker); a schema of this run's own, dropped at the end.
    schema = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(PG_URL, poolclass=NullPool)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE SCHEMA {schema}")
    db = f"{PG_URL}?options=-csearch_path%3D{schema}"
    ports = {p: free_port() for p in (8201, 8202, 8203, 8101, 8102, 8103)}
    limits = ",".join(f"{s}={CAP}" for s in STATES)
    env = {"TRACE30_SANDBOX": "1", "TRACE30_REDIS_URL": "redis://127.0.0.1:6379/0",
           "TRACE30_REDIS_PREFIX": prefix, "TRACE30_DATABASE_URL": db,
           "TRACE30_LOG_LEVEL": "WARNING", "TRACE30_VIES_MS_CONCURRENCY": str(CAP),
           "TRACE30_VIES_MS_CONCURRENCY_OVERRIDES": limits, "TRACE30_VIES_DEADLINE_S": "30",
           "TRACE30_GATEWAY_VAT_TIMEOUT_S": "35", "TRACE30_GATEWAY_DEADLINE_S": "40",
           "TRACE30_BATCH_RETRY_S": "5,30", "TRACE30_WORKERS": "2", "TRACE30_THREADS": "32",
           **moved_urls(ports)}
    print(f"seeding {count} traders over {', '.join(STATES)} ...", flush=True)
    t0 = time.monotonic()
    seed(db, count)
    print(f"  seeded in {time.monotonic() - t0:.1f} s", flush=True)
    procs: list[subprocess.Popen] = []
    try:
        vies = f"http://127.0.0.1:{ports[8201]}"
        procs.append(start([sys.executable, "-m", "simulators.vies", "--host", "127.0.0.1",
                            "--port", str(ports[8201]), "--quiet",
                            "--latency-ms", str(int(LATENCY_S * 1000))]
                           + [a for s in STATES for a in ("--ms-limit", f"{s}={CAP}")],
                           vies + "/_sim/health", env))
        procs.append(start([sys.executable, "-m", "simulators.payee", "--host", "127.0.0.1",
                            "--port", str(ports[8203])],
                           f"http://127.0.0.1:{ports[8203]}/_sim/health", env))
        for name, port in (("vat", 8101), ("payment", 8103)):
            procs.append(start(gunicorn(f"services.{name}.wsgi:app", ports[port], workers=2,
                                        threads=32), f"http://127.0.0.1:{ports[port]}/healthz",
                               env))
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        workers = [subprocess.Popen([sys.executable, "-m", "trace30.cli", "worker"], cwd=ROOT,
                                    env=full_env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL) for _ in range(WORKERS)]
        procs.extend(workers)
        # Wait until every worker has built its gateway code and registered with RQ: the run
        # measures re-verification, not interpreter start-up.
        conn = redis.Redis()
        queue = Queue(prefix.replace(":", "-") + "reverify", connection=conn)
        deadline = time.monotonic() + 300
        while Worker.count(queue=queue) < WORKERS and time.monotonic() < deadline:
            time.sleep(0.5)
        requests.post(vies + "/_sim/reset", timeout=5)
        samples: list[int] = []
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.wait(0.25):
                stats = requests.get(vies + "/_sim/stats", timeout=5).json()
                samples.append(sum(stats["in_flight"].values())
                               if isinstance(stats["in_flight"], dict) else stats["in_flight"])

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        # A seller signing up meanwhile: every PROBE_EVERY_S a fresh check of a German number
        # (the batch keeps DE's slots busy), alternately as a signup and as batch work, the
        # latter being what a signup would wait without priority.
        probes: dict[str, list[float]] = {"interactive": [], "batch": []}
        probe_numbers = iter(numbers("DE", 400, random.Random(31)))
        vat_url = f"http://127.0.0.1:{ports[8101]}/v1/vat/check"
        auth = {"Authorization": "Bearer trace30-sandbox-internal-token"}

        def probe() -> None:
            turn = 0
            while not sampling.wait(PROBE_EVERY_S):
                priority = ("interactive", "batch")[turn % 2]
                turn += 1
                t = time.monotonic()
                answer = requests.post(vat_url, json={"vat_number": next(probe_numbers),
                                                      "max_age_s": 0, "priority": priority},
                                       headers=auth, timeout=60).json()
                if answer.get("attempts"):  # VIES was asked (not a local answer)
                    probes[priority].append(time.monotonic() - t)

        prober = threading.Thread(target=probe, daemon=True)
        prober.start()
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-m", "trace30.cli", "reverify", "--all",
                                 "--run-id", f"bench-{uuid.uuid4().hex[:6]}",
                                 "--report-dir", tmp], cwd=ROOT, env=full_env,
                                capture_output=True, text=True, timeout=3600)
        elapsed = time.monotonic() - started
        sampling.set()
        if result.returncode != 0:
            print(result.stdout, result.stderr)
            return 1
        stats = requests.get(vies + "/_sim/stats", timeout=5).json()
        ceiling = len(STATES) * CAP / LATENCY_S
        achieved = count / elapsed
        print(result.stdout.strip())
        print(f"{count} traders, {len(STATES)} member states, cap C={CAP} per state, VIES "
              f"latency L={LATENCY_S * 1000:.0f} ms, {WORKERS} workers")
        print(f"  ceiling states*C/L     {ceiling:8.1f} traders/s")
        print(f"  achieved               {achieved:8.1f} traders/s ({elapsed:.1f} s)")
        print(f"  ratio achieved/ceiling {achieved / ceiling:.3f}   (target >= 0.9)")
        busy = [n for n in samples if n > 0]
        print(f"  VIES calls in flight   mean {statistics.mean(busy) if busy else 0:.1f} of "
              f"{len(STATES) * CAP} slots while busy ({len(busy) / 4:.0f} s busy of "
              f"{elapsed:.0f} s)")
        spread = Counter(busy)
        print("  samples by calls in flight  "
              + ", ".join(f"{n}: {spread[n]}" for n in sorted(spread, reverse=True)))
        quarter = max(1, len(samples) // 4)
        print("  mean in flight by quarter of the run  "
              + ", ".join(f"{statistics.mean(samples[i:i + quarter]):.2f}"
                          for i in range(0, len(samples), quarter)))
        for priority, label in (("interactive", "a signup's VAT check"),
                                ("batch", "the same as batch work")):
            got = sorted(probes[priority])
            if got:
                print(f"  during the run, {label:22s} median {statistics.median(got):5.2f} s, "
                      f"max {got[-1]:5.2f} s ({len(got)} checks; L = {LATENCY_S:.1f} s)")
        print(f"  MS_MAX_CONCURRENT_REQ  {stats['faults'].get('MS_MAX_CONCURRENT_REQ', 0)}"
              f"   (target 0); VIES calls {stats['calls']}; max in flight "
              f"{stats['max_in_flight']}")
    finally:
        stop(*reversed(procs))
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        r = redis.Redis()
        for pattern in (prefix + "*", f"rq:*{prefix.replace(':', '-')}*",
                        "rq:job:reverify-bench-*"):
            keys = list(r.scan_iter(match=pattern, count=1000))
            if keys:
                r.delete(*keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
