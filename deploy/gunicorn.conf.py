"""gunicorn settings shared by every trace30 service (``gunicorn -c deploy/gunicorn.conf.py``).

Workers and threads come from ``TRACE30_WORKERS`` and ``TRACE30_THREADS``; command-line flags
override them. Access logging is left to the services' own JSON log line, which carries the
request id; gunicorn's would duplicate it without one.
"""

import os

bind = os.environ.get("TRACE30_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("TRACE30_WORKERS", "2"))
threads = int(os.environ.get("TRACE30_THREADS", "4"))
worker_class = "gthread"
timeout = 30  # longer than any service's overall deadline, shorter than a stuck worker's life
graceful_timeout = 10
keepalive = 5
accesslog = None
errorlog = "-"
loglevel = os.environ.get("TRACE30_LOG_LEVEL", "info").lower()
# gunicorn's heartbeat files in memory (its documented advice for containers), not a temp file.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None  # noqa: S108
# App factories run in each worker after the fork: one VIES client and one pool per process.
preload_app = False
