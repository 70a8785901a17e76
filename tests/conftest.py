"""Fixtures every test package shares: real Redis with a private prefix, real processes."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
import redis
import requests

from shared.redis_client import Store
from trace30.suite import moved_urls

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = os.environ.get("TRACE30_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
INTERNAL_TOKEN = "test-internal-token"
AUTH = {"Authorization": f"Bearer {INTERNAL_TOKEN}"}


@pytest.fixture(autouse=True)
def _no_outside_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that opens a connection outside loopback (zeep's tests do the same)."""
    real_connect = socket.socket.connect

    def guarded(self: socket.socket, address: object) -> object:
        host = address[0] if isinstance(address, tuple) else None
        if host is not None and host not in ("127.0.0.1", "::1", "localhost"):
            raise RuntimeError(f"test tried to reach {host}: tests stay on loopback")
        return real_connect(self, address)  # type: ignore[arg-type]

    monkeypatch.setattr(socket.socket, "connect", guarded)


class FakeClock:
    """A clock for the ``clock=`` parameter of breakers and caches that moves only when told:
    a test ends a cool-down or ages a cached answer with :meth:`advance`, not ``time.sleep``.
    (Redis TTLs and the limiters' leases run on the Redis server's time: those still take a
    real wait.)"""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A key prefix of this test's own; every key under it is deleted afterwards."""
    prefix = f"trace30test:{uuid.uuid4().hex[:12]}:"
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    keys = list(client.scan_iter(match=prefix + "*", count=1000))
    if keys:
        client.delete(*keys)
    client.close()


@pytest.fixture
def store(redis_prefix: str) -> Store:
    """A :class:`Store` on the real Redis server with this test's prefix."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True, socket_timeout=2)
    return Store(client, redis_prefix)


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except OSError:
        return 32768


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port nobody listens on right now, below the kernel's ephemeral range: a port the
    kernel hands out (``bind(0)``) can be given to an outgoing connection before the server
    binds it, which once made ``trace30 run`` fail with "Address already in use" in CI."""
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(500):
        port = rng.randint(10000, low - 1)
        if port in _HANDED_OUT:
            continue
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _HANDED_OUT.add(port)
        return port
    raise RuntimeError("no free port found below the ephemeral range")


def free_offset(ports: tuple[int, ...]) -> int:
    """An offset that moves every one of ``ports`` onto a free port below the ephemeral range
    (see :func:`free_port`)."""
    low = _ephemeral_low()
    rng = random.Random()
    for _ in range(500):
        offset = rng.randint(1000, low - max(ports) - 1)
        moved = [port + offset for port in ports]
        if _HANDED_OUT.intersection(moved):
            continue
        try:
            for port in moved:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _HANDED_OUT.update(moved)
        return offset
    raise RuntimeError("no free port offset found below the ephemeral range")


def wait_blocked(store: Store, at_least: int, timeout_s: float = 5.0) -> None:
    """Wait until ``at_least`` clients are blocked on the Redis server (in ``BLPOP``): a
    limiter waiter is really waiting, whatever the load on the machine."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if int(store.client.info("clients")["blocked_clients"]) >= at_least:
            return
        time.sleep(0.005)
    raise AssertionError(f"fewer than {at_least} Redis clients blocked after {timeout_s} s")


def wait_http(url: str, proc: subprocess.Popen, timeout_s: float = 20,
              output: Callable[[], str] | None = None) -> None:
    """Wait until ``url`` answers (any status), or fail with the process's output."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            if output is not None:
                out = output()
            else:
                out = proc.stdout.read() if proc.stdout else ""
            raise RuntimeError(f"process exited with {proc.returncode}:\n{out}")
        try:
            requests.get(url, timeout=0.5)
            return
        except requests.RequestException:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"{url} did not answer within {timeout_s}s")


class Processes:
    """Real processes started on free ports, each waited for, all stopped by :meth:`stop_all`.

    Their output goes to a temporary file, never to a pipe nobody reads: a process that logs
    more than a pipe holds (64 KiB) would block on its next log line.
    """

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen] = []
        self._logs: dict[int, IO[str]] = {}

    def start(self, argv: list[str], *, health: str = "/healthz",
              env: dict[str, str] | None = None, port: int | None = None) -> str:
        """Start ``argv`` (``{port}`` and ``{python}`` are filled in); return its base URL."""
        port = port or free_port()
        full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        log = tempfile.TemporaryFile("w+")  # noqa: SIM115 (closed by stop_all)
        proc = subprocess.Popen(
            [a.format(port=port, python=sys.executable) for a in argv],
            cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        self.procs.append(proc)
        self._logs[proc.pid] = log
        base = f"http://127.0.0.1:{port}"
        wait_http(base + health, proc, output=lambda: self.output(proc))
        return base

    def output(self, proc: subprocess.Popen) -> str:
        """What ``proc`` has printed so far."""
        log = self._logs[proc.pid]
        log.flush()
        log.seek(0)
        return log.read()

    def stop_all(self) -> None:
        """Terminate every process started, then reap them."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            self._logs.pop(proc.pid).close()
        self.procs.clear()


@pytest.fixture
def processes() -> Iterator[Processes]:
    """Processes that live for one test."""
    procs = Processes()
    yield procs
    procs.stop_all()


@pytest.fixture(scope="session")
def session_processes() -> Iterator[Processes]:
    """Processes shared by the whole test session (simulators)."""
    procs = Processes()
    yield procs
    procs.stop_all()


def start_simulator(processes: Processes, system: str, *args: str) -> str:
    """Start ``simulators.<system>`` as a real process on loopback; its base URL once healthy."""
    return processes.start(["{python}", "-m", f"simulators.{system}", "--host", "127.0.0.1",
                            "--port", "{port}", *args], health="/_sim/health")


def set_knobs(sim: str, knobs: dict[str, object]) -> None:
    """PATCH a simulator's knobs (null puts a knob back to its default)."""
    requests.patch(sim + "/_sim/config", json=knobs, timeout=5).raise_for_status()


def reset_around(sim: str, knobs: dict[str, object],
                 settle: Callable[[str], None] | None = None) -> Iterator[str]:
    """``sim`` with ``knobs`` and zeroed statistics for a test (``yield from`` it in a
    fixture), its knobs put back afterwards; ``settle`` waits for it between the two."""
    set_knobs(sim, knobs)
    if settle is not None:
        settle(sim)
    requests.post(sim + "/_sim/reset", timeout=5).raise_for_status()
    yield sim
    set_knobs(sim, knobs)


@pytest.fixture(scope="session")
def vies_sim(session_processes: Processes) -> str:
    """The VIES simulator as a real process; returns its base URL. Reset it before use."""
    return start_simulator(session_processes, "vies")


@pytest.fixture
def vies(vies_sim: str) -> Iterator[str]:
    """The shared VIES simulator, reset (stats and knobs) around the test."""
    yield from reset_around(vies_sim, SIM_DEFAULTS)


# null puts a knob of the simulator back to its default
SIM_DEFAULTS = dict.fromkeys(
    ["latency_ms", "ms_limits", "global_limit", "fault_http_status", "slow_seconds", "overrides",
     "down", "front_ends_down"]
)

VIES_PATH = "/taxation_customs/vies/services/checkVatService"


def gunicorn_argv(app: str, workers: int = 1, threads: int = 1) -> list[str]:
    """argv to run ``app`` under gunicorn on ``{port}`` with the project's settings."""
    return [
        "{python}", "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
        "-b", "127.0.0.1:{port}", "-w", str(workers), "--threads", str(threads), app,
    ]


@dataclass
class Suite:
    """Where each process of the session's suite listens."""

    urls: dict[str, str]
    env: dict[str, str]

    def sim(self, name: str) -> str:
        return self.urls[name]

    def stats(self, name: str) -> dict:
        return requests.get(self.urls[name] + "/_sim/stats", timeout=5).json()

    def reset(self) -> None:
        """Zero the simulators' counters and forget the services' caches and breakers."""
        for name in ("vies-simulator", "registers-simulator", "payee-simulator",
                     "hmrc-simulator", "uid-simulator"):
            requests.post(self.urls[name] + "/_sim/reset", timeout=5).raise_for_status()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=self.env["TRACE30_REDIS_PREFIX"] + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()

    def configure(self, name: str, **knobs: object) -> None:
        requests.patch(self.urls[name] + "/_sim/config", json=knobs,
                       timeout=5).raise_for_status()

    def restore(self, name: str) -> None:
        knobs = requests.get(self.urls[name] + "/_sim/config", timeout=5).json()
        requests.patch(self.urls[name] + "/_sim/config", json=dict.fromkeys(knobs),
                       timeout=5).raise_for_status()


@pytest.fixture(scope="session")
def suite(session_processes: Processes) -> Iterator[Suite]:
    """Simulators and the VAT, registry and payment services, started once.

    The services keep no answer in process memory and their breakers never open here (both
    are tested in their own suites), so that each test starts from what ``reset`` leaves.
    """
    ports = {8201: free_port(), 8202: free_port(), 8203: free_port(), 8204: free_port(),
             8205: free_port(), 8101: free_port(), 8102: free_port(), 8103: free_port()}
    env = {"TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
           "TRACE30_REDIS_URL": REDIS_URL,
           "TRACE30_REDIS_PREFIX": f"trace30test:suite{uuid.uuid4().hex[:8]}:",
           "TRACE30_VIES_DEADLINE_S": "1.5", "TRACE30_VIES_RETRY_BASE_S": "0.05",
           "TRACE30_VAT_LOCAL_CACHE_TTL_S": "0", "TRACE30_VIES_BREAKER_THRESHOLD": "1000",
           "TRACE30_REGISTRY_BREAKER_THRESHOLD": "1000", "TRACE30_REGISTRY_DEADLINE_S": "2",
           "TRACE30_REQUESTER_VAT_NUMBER": "NL004495445B01",
           "TRACE30_VIES_STATUS_TTL_S": "0", "TRACE30_VAT_SOURCES_BREAKER_THRESHOLD": "1000",
           "TRACE30_LOG_LEVEL": "WARNING", **moved_urls(ports)}
    urls = {}
    for name, module, port in (("vies-simulator", "simulators.vies", 8201),
                               ("registers-simulator", "simulators.registers", 8202),
                               ("payee-simulator", "simulators.payee", 8203),
                               ("hmrc-simulator", "simulators.hmrc", 8204),
                               ("uid-simulator", "simulators.uid", 8205)):
        urls[name] = session_processes.start(
            ["{python}", "-m", module, "--host", "127.0.0.1", "--port", "{port}"],
            health="/_sim/health", port=ports[port], env=env)
    for name, port in (("vat", 8101), ("registry", 8102), ("payment", 8103)):
        urls[name] = session_processes.start(
            gunicorn_argv(f"services.{name}.wsgi:app", workers=1, threads=8),
            port=ports[port], env=env)
    suite = Suite(urls, env)
    yield suite
    suite.reset()


