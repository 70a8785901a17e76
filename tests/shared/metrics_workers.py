"""Targets of the multiprocess metrics test (:func:`tests.multiprocess.together`): each spawned
process imports prometheus-client afresh, so ``PROMETHEUS_MULTIPROC_DIR`` (set by the test
before spawning) puts it in multiprocess mode, as gunicorn's workers are."""

from __future__ import annotations

import os
from multiprocessing.synchronize import Barrier

from services.vat import create_app

CONFIG = {"TESTING": True, "SANDBOX": True, "INTERNAL_TOKEN": "test-internal-token"}


def serve_healthz(barrier: Barrier, times: int) -> int:
    """Answer ``/healthz`` ``times`` times in this process; its pid."""
    client = create_app(CONFIG).test_client()
    barrier.wait()
    for _ in range(times):
        assert client.get("/healthz").status_code == 200
    return os.getpid()


def scrape(barrier: Barrier) -> str:
    """``/metrics`` as a process that served nothing else shows it."""
    client = create_app(CONFIG).test_client()
    barrier.wait()
    response = client.get("/metrics")
    assert response.status_code == 200
    return response.get_data(as_text=True)
