"""Which processes make up the suite, on which ports, and a small supervisor to run them.

``trace30 run`` (and so ``make run``) starts each service under gunicorn and, in sandbox, the
simulators of the outside systems, waits until each answers, and stops all of them when one
dies or on Ctrl-C. Ports are the project's defaults: gateway 8080, vat 8101, registry 8102,
payment 8103; simulators VIES 8201 (SOAP and REST), registers 8202, payee verification 8203,
HMRC 8204, Swiss UID register 8205.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from shared.config import ENV_PREFIX, SETTINGS

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONF = ROOT / "deploy" / "gunicorn.conf.py"
_LOOPBACK = re.compile(r"^http://127\.0\.0\.1:(\d+)")


@dataclass(frozen=True)
class Component:
    """One process of the suite."""

    name: str
    port: int
    argv: tuple[str, ...]
    health: str = "/healthz"
    sandbox_only: bool = False


def _gunicorn(app: str, port: int, host: str) -> tuple[str, ...]:
    return (sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF),
            "-b", f"{host}:{port}", app)


def _simulator(module: str, port: int, host: str) -> tuple[str, ...]:
    return (sys.executable, "-m", module, "--host", host, "--port", str(port))


def components(host: str = "127.0.0.1", offset: int = 0) -> list[Component]:
    """The suite, in start order (simulators before the services that call them).

    ``offset`` shifts every port, so that a second suite (a test's) can run beside the first.
    """
    return [
        Component("vies-simulator", 8201 + offset,
                  _simulator("simulators.vies", 8201 + offset, host),
                  health="/_sim/health", sandbox_only=True),
        Component("registers-simulator", 8202 + offset,
                  _simulator("simulators.registers", 8202 + offset, host),
                  health="/_sim/health", sandbox_only=True),
        Component("payee-simulator", 8203 + offset,
                  _simulator("simulators.payee", 8203 + offset, host),
                  health="/_sim/health", sandbox_only=True),
        Component("hmrc-simulator", 8204 + offset,
                  _simulator("simulators.hmrc", 8204 + offset, host),
                  health="/_sim/health", sandbox_only=True),
        Component("uid-simulator", 8205 + offset,
                  _simulator("simulators.uid", 8205 + offset, host),
                  health="/_sim/health", sandbox_only=True),
        Component("vat", 8101 + offset, _gunicorn("services.vat.wsgi:app", 8101 + offset, host)),
        Component("registry", 8102 + offset,
                  _gunicorn("services.registry.wsgi:app", 8102 + offset, host)),
        Component("payment", 8103 + offset,
                  _gunicorn("services.payment.wsgi:app", 8103 + offset, host)),
        Component("gateway", 8080 + offset,
                  _gunicorn("services.gateway.wsgi:app", 8080 + offset, host)),
    ]


def moved_urls(port_map: dict[int, int], sandbox: bool = True) -> dict[str, str]:
    """``TRACE30_*`` variables for every URL setting whose default is a suite port on loopback,
    pointed at the port ``port_map`` moves it to (to run a suite on other ports)."""
    env = {}
    for name, setting in SETTINGS.items():
        default = (setting.sandbox_default if sandbox and setting.sandbox_default
                   else setting.default)
        if not isinstance(default, str):
            continue
        match = _LOOPBACK.match(default)
        if match and int(match.group(1)) in port_map:
            env[ENV_PREFIX + name] = (f"http://127.0.0.1:{port_map[int(match.group(1))]}"
                                      + default[match.end():])
    return env


def _wait_ready(c: Component, proc: subprocess.Popen[bytes], timeout_s: float = 30) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end and proc.poll() is None:
        try:
            requests.get(f"http://127.0.0.1:{c.port}{c.health}", timeout=1)
            return True
        except requests.RequestException:
            time.sleep(0.1)
    return False


def run(sandbox: bool, host: str = "127.0.0.1", offset: int = 0) -> int:
    """Start the suite and supervise it until Ctrl-C or a process dies; return an exit code."""
    procs: list[tuple[Component, subprocess.Popen[bytes]]] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    if offset:
        env.update(moved_urls({c.port - offset: c.port for c in components(host, offset)},
                              sandbox))
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        for c in components(host, offset):
            if c.sandbox_only and not sandbox:
                continue
            proc = subprocess.Popen(c.argv, cwd=ROOT, env=env)  # noqa: S603 (our own argv)
            procs.append((c, proc))
            if not _wait_ready(c, proc):
                print(f"trace30: {c.name} did not start (see its log above)", file=sys.stderr)
                return 1
            print(f"trace30: {c.name} ready on http://{host}:{c.port}", file=sys.stderr)
        print("trace30: suite running; Ctrl-C stops it", file=sys.stderr)
        while not stopping:
            for c, proc in procs:
                if proc.poll() is not None:
                    print(f"trace30: {c.name} exited with {proc.returncode}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        for _, proc in reversed(procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
