"""Helpers the benchmark scripts share: start processes, time requests, load a server."""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(argv: list[str], health_url: str, env: dict[str, str] | None = None,
          timeout_s: float = 30) -> subprocess.Popen:
    """Start a process and wait until ``health_url`` answers."""
    full_env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'bench'}", **(env or {})}
    proc = subprocess.Popen(argv, cwd=ROOT, env=full_env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"{argv} exited with {proc.returncode}")
        try:
            requests.get(health_url, timeout=0.5)
            return proc
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{health_url} did not answer")


def gunicorn(app: str, port: int, workers: int = 1, threads: int = 4) -> list[str]:
    return [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), "-b", f"127.0.0.1:{port}",
            "-w", str(workers), "--threads", str(threads), app]


def stop(*procs: subprocess.Popen) -> None:
    for p in procs:
        p.terminate()
    for p in procs:
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()


def median_ms(fn, n: int) -> float:
    """Median wall time of ``fn()`` over ``n`` calls, after two warm-up calls."""
    fn()
    fn()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - t) * 1000)
    return statistics.median(samples)


def throughput(port: int, path: str, body: dict, headers: dict[str, str], seconds: float,
               connections: int = 8, vary: bool = False) -> float:
    """Requests per second that ``connections`` keep-alive clients get through in ``seconds``.

    ``vary``: every request's bytes differ (20 characters of trailing white space, spaces and
    tabs spelling the request's number in binary), the same JSON document all the same.
    """
    payload = json.dumps(body)
    hdrs = {"Content-Type": "application/json", **headers}
    counts = [0] * connections
    errors = [0] * connections
    stop_at = time.monotonic() + seconds

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            tail = format(n * connections + i, "020b").replace("0", " ").replace("1", "\t")
            conn.request("POST", path, payload + tail if vary else payload, hdrs)
            resp = conn.getresponse()
            resp.read()
            if resp.status == 200:
                counts[i] += 1
            else:
                errors[i] += 1
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(connections)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    if sum(errors):
        raise RuntimeError(f"{sum(errors)} requests failed")
    return sum(counts) / elapsed
