"""What each process of ``test_claims_multiprocess.py`` runs: its own :class:`EvidenceLog` (its
own engine and connections), claiming from the shared database until nothing is left."""

from __future__ import annotations

from datetime import UTC, datetime
from multiprocessing.synchronize import Barrier

from services.gateway.evidence import EvidenceLog

#: The claims raced for, in the order the processes run them.
KINDS = ("stale_running", "due_retries", "webhooks", "suspensions")

#: A lease long enough that nothing claimed comes due again during the test.
LEASE_S = 600.0


def claim_once(log: EvidenceLog, kind: str, limit: int) -> list[str]:
    """One claim of ``kind``: the ids claimed (verification, delivery or trader ids)."""
    now = datetime.now(UTC)
    if kind == "stale_running":
        return [r.id for r in log.claim_stale_running(now, limit, LEASE_S)]
    if kind == "due_retries":
        return [r.id for r in log.claim_due_retries(now, limit, LEASE_S)]
    if kind == "webhooks":
        return [d.id for d in log.claim_due_webhooks(now, limit, LEASE_S)]
    if kind == "suspensions":
        return [f"{tenant}/{trader_id}"
                for tenant, trader_id, _, _ in log.claim_due_suspensions(now, limit)]
    raise ValueError(kind)


def claim_everything(barrier: Barrier, url: str, sealing_keys: str,
                     limit: int) -> dict[str, list[str]]:
    """For each kind of :data:`KINDS`: wait for the other processes, then claim ``limit`` at a
    time until a claim comes back empty; what this process claimed, per kind."""
    log = EvidenceLog(url, sealing_keys)
    try:
        log.ping()  # connected before the race starts
        claimed: dict[str, list[str]] = {}
        for kind in KINDS:
            barrier.wait()
            mine: list[str] = []
            while batch := claim_once(log, kind, limit):
                mine += batch
            claimed[kind] = mine
        return claimed
    finally:
        log.close()
