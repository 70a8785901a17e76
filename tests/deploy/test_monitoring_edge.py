"""/metrics of the gateway as it is deployed: gunicorn with ``deploy/gunicorn.conf.py`` (two
workers, multiprocess mode set up by the configuration), behind the project's nginx.

Whichever worker answers a scrape, it counts every worker's requests, also those of a worker
that was killed; nginx never passes /metrics on; with ``TRACE30_METRICS=internal`` the gateway
answers it only with the internal token.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import REDIS_URL, Processes, gunicorn_argv
from tests.deploy.test_edge import start_nginx

pytestmark = pytest.mark.slow  # gunicorn and nginx as processes

TOKEN = "monitoring-test-internal-token"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
HEALTHZ = {"service": "gateway", "method": "GET", "route": "/healthz", "status": "200"}


@dataclass
class Deployed:
    nginx: str
    gunicorn: str
    master: subprocess.Popen


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    tmp = tmp_path_factory.mktemp("monitoring")
    prefix = f"trace30test:mon{uuid.uuid4().hex[:8]}:"
    procs = Processes()
    env = {"TRACE30_SANDBOX": "1", "TRACE30_REDIS_URL": REDIS_URL, "TRACE30_REDIS_PREFIX": prefix,
           "TRACE30_LOG_LEVEL": "WARNING", "TRACE30_METRICS": "internal",
           "TRACE30_INTERNAL_TOKEN": TOKEN,
           "TRACE30_DATABASE_URL": f"sqlite:///{tmp}/evidence.sqlite3"}
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:  # gunicorn.conf.py makes a folder of its own
        env["PROMETHEUS_MULTIPROC_DIR"] = ""
    try:
        gunicorn = procs.start(gunicorn_argv("services.gateway.wsgi:app", workers=2, threads=2),
                               env=env)
        nginx = start_nginx(procs, tmp, upstream=gunicorn.removeprefix("http://"))
        yield Deployed(nginx, gunicorn, procs.procs[0])
    finally:
        procs.stop_all()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


def healthz_count(base: str) -> float:
    response = requests.get(base + "/metrics", headers=BEARER, timeout=10)
    assert response.status_code == 200
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            if sample.name == "trace30_http_requests_total" and sample.labels == HEALTHZ:
                return sample.value
    return 0.0


def workers(master: subprocess.Popen) -> list[int]:
    children = Path(f"/proc/{master.pid}/task/{master.pid}/children").read_text().split()
    return [int(pid) for pid in children]


def test_every_worker_is_counted_whichever_answers_the_scrape(deployed: Deployed) -> None:
    before = healthz_count(deployed.gunicorn)
    for _ in range(40):  # a connection each: both workers race to accept them
        with requests.Session() as session:
            assert session.get(deployed.gunicorn + "/healthz", timeout=10).status_code == 200
        time.sleep(0.01)
    # each scrape on a connection of its own, so both workers answer some
    assert {healthz_count(deployed.gunicorn) for _ in range(6)} == {before + 40}

    # A worker killed outright: its counts stay; gunicorn starts another.
    first = workers(deployed.master)
    assert len(first) == 2
    os.kill(first[0], signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = workers(deployed.master)
        if len(now) == 2 and first[0] not in now:
            break
        time.sleep(0.2)
    else:
        pytest.fail("gunicorn did not replace the killed worker")
    assert {healthz_count(deployed.gunicorn) for _ in range(6)} == {before + 40}


def test_metrics_need_the_internal_token(deployed: Deployed) -> None:
    refused = requests.get(deployed.gunicorn + "/metrics", timeout=10)
    assert refused.status_code == 401
    assert refused.headers["Content-Type"].startswith("application/problem+json")
    wrong = requests.get(deployed.gunicorn + "/metrics", timeout=10,
                         headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # any Host: Prometheus scrapes by the pod's address
    ok = requests.get(deployed.gunicorn + "/metrics", headers={**BEARER, "Host": "10.1.2.3"},
                      timeout=10)
    assert ok.status_code == 200 and "trace30_http_requests_total" in ok.text


@pytest.mark.parametrize("path", ["/metrics", "/metrics?format=text", "//metrics",
                                  "/./metrics", "/%6Detrics"])
def test_nginx_never_passes_metrics_on(deployed: Deployed, path: str) -> None:
    response = requests.get(deployed.nginx + path, headers=BEARER, timeout=10)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert "trace30_" not in response.text
    # the rest of the gateway still passes
    assert requests.get(deployed.nginx + "/healthz", timeout=10).status_code == 200
