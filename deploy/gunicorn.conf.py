"""gunicorn settings shared by every trace30 service (``gunicorn -c deploy/gunicorn.conf.py``).

Workers and threads come from ``TRACE30_WORKERS`` and ``TRACE30_THREADS``; command-line flags
override them. Access logging is left to the services' own JSON log line, which carries the
request id; gunicorn's would duplicate it without one.

Slow clients. A gthread worker hands each accepted connection to one of its threads, which waits
there for the request (up to 5 s for the first byte, then as long as the client takes to send the
rest) and then writes the answer at the client's pace. 2 workers x 4 threads are 8 such waits:
ten clients that connect and stall made every other client of the gateway wait up to a minute
(issue 9, finding 7). So gunicorn is never published to clients: the gateway sits behind nginx
(deploy/nginx/gateway.conf.template), which holds slow and idle connections itself and passes
gunicorn only whole requests over a few kept-alive connections. The three internal services are
for the gateway and the batch workers, whose clients send whole requests with timeouts: keep
their ports off public networks.
"""

import os
import tempfile
from typing import Any

bind = os.environ.get("TRACE30_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("TRACE30_WORKERS", "2"))
threads = int(os.environ.get("TRACE30_THREADS", "4"))
worker_class = "gthread"
# With gthread this is not a per-request limit: a worker whose main loop (not a request thread)
# is silent this long is killed and replaced. A long request (the gateway's 'Prefer: wait' up to
# 30 s plus its 12 s deadline) is bounded by the services' own deadlines, and in front by
# nginx's proxy_read_timeout (60 s).
timeout = 30
# On SIGTERM (a deploy, a scale-down), requests in flight get this long to finish.
graceful_timeout = 10
# An idle connection is kept this long for its next request (in the worker's poller, not in a
# thread). nginx keeps its upstream connections 4 s, under this, so that it never sends a request
# on a connection gunicorn is closing; the gateway's HTTP clients to the services reuse theirs.
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("TRACE30_LOG_LEVEL", "info").lower()
# gunicorn's heartbeat files in memory (its documented advice for containers), not a temp file.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# App factories run in each worker after the fork: one VIES client and one pool per process.
preload_app = False

# Metrics (shared/metrics.py). Each worker is a process with counters of its own: in
# prometheus-client's multiprocess mode every worker writes its values to files in
# PROMETHEUS_MULTIPROC_DIR, and /metrics, whichever worker answers, adds them all up. The
# variable must be set before a worker imports prometheus_client: on_starting sets it in the
# master, before the first fork (unset: a fresh folder of this master's, in memory under
# /dev/shm when there is one). One folder per gunicorn master: on_starting empties it.


def on_starting(server: object) -> None:
    """Set up the folder of the workers' metrics and forget an earlier master's values."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not directory:
        directory = tempfile.mkdtemp(prefix="trace30-metrics-", dir=worker_tmp_dir)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
    os.makedirs(directory, exist_ok=True)
    for name in os.listdir(directory):
        if name.endswith(".db"):
            os.remove(os.path.join(directory, name))


def child_exit(server: object, worker: Any) -> None:
    """A worker exited: its live gauges go (its counters stay, as Prometheus expects)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
