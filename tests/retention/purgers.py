"""What each process of ``test_multiprocess.py`` runs: ``trace30 purge`` as the command runs it
(:func:`trace30.retention.purge` with settings loaded from the environment's values)."""

from __future__ import annotations

from multiprocessing.synchronize import Barrier
from typing import Any

from shared.config import load
from trace30.retention import purge


def purge_when_all_ready(barrier: Barrier, overrides: dict[str, Any],
                         retention_months: int) -> dict[str, Any]:
    """Load the settings, wait for the other processes, purge; the report's counts."""
    settings = load({}, overrides)
    barrier.wait()
    report = purge(settings, retention_months=retention_months, dry_run=False)
    return {"traders": report.traders, "tenant_of": report.tenant_of, "sql": report.sql,
            "redis": report.redis, "by_trader": report.by_trader}
