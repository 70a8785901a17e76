"""The evidence log's leases raced for by several OS processes, on SQLite and PostgreSQL.

Four processes (``spawn``, each with its own engine) claim from the same seeded rows, a few at
a time, until nothing is left: stale running verifications (``claim_stale_running``), due
pending ones (``claim_due_retries``), due webhooks (the outbox's ``claim_due_webhooks``) and
due suspensions (``claim_due_suspensions``). Every row is claimed exactly once, none is lost,
and what is not due is never claimed. On PostgreSQL the claimers take different rows (``FOR
UPDATE SKIP LOCKED``); on SQLite ``BEGIN IMMEDIATE`` takes turns.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from services.gateway.evidence import EvidenceLog
from tests.gateway.claimers import KINDS, claim_everything, claim_once
from tests.gateway.evidence_fixtures import SEALING_KEYS, make_record
from tests.multiprocess import together

PROCESSES = 4
ROWS = 24  # of each kind
LIMIT = 2  # rows a claim takes: many rounds, so the processes interleave

pytestmark = pytest.mark.slow  # processes of its own


def seed(log: EvidenceLog) -> dict[str, set[str]]:
    """``ROWS`` due rows of each kind, and as many that are not due (or not claimable);
    the ids of the due ones, per kind."""
    now = datetime.now(UTC)
    past, future = now - timedelta(minutes=5), now + timedelta(hours=1)
    due: dict[str, set[str]] = {kind: set() for kind in KINDS}
    for i in range(ROWS):
        # a running verification past its recovery time, and one still within it
        log.save(make_record(f"run-{i}", f"t-run-{i}", state="running", verdict=None,
                             settled_at=None, created_at=now, next_retry_at=past))
        log.save(make_record(f"run-live-{i}", f"t-run-live-{i}", state="running",
                             verdict=None, settled_at=None, created_at=now,
                             next_retry_at=future))
        due["stale_running"].add(f"run-{i}")
        # a pending verdict whose retry is due, and one not yet due
        log.save(make_record(f"pend-{i}", f"t-pend-{i}", verdict="pending", created_at=now,
                             next_retry_at=past))
        log.save(make_record(f"pend-later-{i}", f"t-pend-later-{i}", verdict="pending",
                             created_at=now, next_retry_at=future))
        due["due_retries"].add(f"pend-{i}")
        # a webhook due now (one per settled verification of another trader)
        log.save(make_record(f"hook-{i}", f"t-hook-{i}", created_at=now))
        due["webhooks"].add(log.enqueue_webhook(
            client_id="shop", url="https://receiver.example/hook", event="verdict.changed",
            payload={"i": i}, verification_id=f"hook-{i}", trader_id=f"t-hook-{i}",
            tenant="default"))
        # rejected traders: one past its correction time (in two tenants), one not yet due
        tenant = "default" if i % 2 else "shop-b"
        log.save(make_record(f"rej-{i}", f"t-rej-{i}", verdict="rejected", created_at=now,
                             tenant_id=tenant))
        log.request_correction(f"t-rej-{i}", past, tenant=tenant)
        due["suspensions"].add(f"{tenant}/t-rej-{i}")
        log.save(make_record(f"rej-later-{i}", f"t-rej-later-{i}", verdict="rejected",
                             created_at=now))
        log.request_correction(f"t-rej-later-{i}", future, tenant="default")
    return due


def test_every_row_is_claimed_by_exactly_one_process(database_url: str,
                                                     evidence_log: EvidenceLog) -> None:
    due = seed(evidence_log)
    per_process = together(claim_everything,
                           [(database_url, SEALING_KEYS, LIMIT)] * PROCESSES)

    for kind in KINDS:
        claims = Counter(i for claimed in per_process for i in claimed[kind])
        twice = {i: n for i, n in claims.items() if n > 1}
        assert not twice, f"{kind}: claimed more than once: {twice}"
        assert set(claims) == due[kind], (
            f"{kind}: lost {due[kind] - set(claims)}, not due {set(claims) - due[kind]}")
        # Nothing is left to claim: every row is leased (or marked sent).
        assert claim_once(evidence_log, kind, 100) == []
    # The leases were written: what was claimed is not due again within the lease.
    stale = evidence_log.get("run-0")
    assert stale is not None and stale.next_retry_at is not None
    assert stale.next_retry_at > datetime.now(UTC) + timedelta(minutes=5)
