"""Payment-details checks per second: the service's core against schwifty alone, and over HTTP.

Prints, from one run on this machine:

1. the start-up cost of loading schwifty's bank directory (a fresh process each time, median
   of three), which ``create_app`` pays once per worker;
2. IBAN checks per second through the service's core (``PaymentChecker.check``: clean-up, every
   IBAN check, bank directory, SEPA, fingerprint, the answer as a dict) against schwifty's
   ``IBAN(...)`` called directly on the same batch, best of several interleaved rounds. The
   target (ratio >= 0.7) is against ``IBAN(x, validate_bban=True)``, which runs the same
   checks (national check digits included) and nothing more; the ratio against a bare
   ``IBAN(x)``, which skips the national check digits, is printed too;
3. checks per second through HTTP: ``POST /v1/payment/check`` to one gunicorn worker (sandbox,
   JSON logs at INFO to /dev/null), from 8 client threads, with latency percentiles.

Run: ``python bench/payment_throughput.py`` (``make bench`` runs every benchmark).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from schwifty import IBAN  # noqa: E402

TARGET_RATIO = 0.7
BATCH_SIZE = 4000
ROUNDS = 7
HTTP_SECONDS = 4.0
HTTP_CLIENTS = 8
TOKEN = "bench-internal-token"  # noqa: S105 - a throwaway local server's

#: Countries of the batch: where traders' accounts are, with and without national check digits.
COUNTRIES = ["DE", "FR", "NL", "ES", "IT", "BE", "AT", "PL", "PT", "IE", "FI", "LU", "SE", "DK",
             "CZ", "SK", "SI", "EE", "LT", "LV", "HR", "GB", "CH", "NO", "RS", "MC"]


def batch(size: int = BATCH_SIZE, seed: int = 30) -> list[str]:
    """Valid IBANs of real banks (schwifty's directory), a tenth typed with spaces, and one in
    twenty with a mistyped digit: what a marketplace receives."""
    rnd = random.Random(seed)  # noqa: S311 - a reproducible batch, not a secret
    out = []
    for i in range(size):
        iban = str(IBAN.random(rnd.choice(COUNTRIES), random=rnd))
        if i % 20 == 7:  # a typo: the checksum catches it
            pos = rnd.randrange(5, len(iban))
            digit = "1" if iban[pos] != "1" else "2"
            iban = iban[:pos] + digit + iban[pos + 1:]
        if i % 10 == 3:
            iban = " ".join(iban[j:j + 4] for j in range(0, len(iban), 4))
        out.append(iban)
    return out


def directory_load_ms() -> tuple[float, int]:
    """Median time to load the whole bank directory in a fresh process, and the bank count."""
    code = ("import time; from services.payment import ibans; t = time.perf_counter(); "
            "n = ibans.load_directory(); print((time.perf_counter() - t) * 1000, n)")
    times, count = [], 0
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,  # noqa: S603
                             text=True, check=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
        ms, n = out.stdout.split()
        times.append(float(ms))
        count = int(n)
    return statistics.median(times), count


def core_checker():
    """A PaymentChecker built as create_app builds it, without Flask."""
    from services.payment import ibans
    from services.payment.cache import PayeeCache
    from services.payment.checks import PaymentChecker
    from services.payment.fingerprints import Fingerprinter
    from services.payment.payee import HttpPayeeVerification
    from shared.breaker import CircuitBreaker
    from shared.redis_client import connect

    ibans.load_directory()
    store = connect(None, "bench:")  # not touched: payee verification is not asked for
    return PaymentChecker(
        payee=HttpPayeeVerification("http://127.0.0.1:9/vop/v1"),
        cache=PayeeCache(store, 60),
        breaker=CircuitBreaker(store, "payee", 5, 30),
        fingerprint=Fingerprinter("bench-fingerprint-key-" + "x" * 20),
    )


def rate(fn, items: list[str]) -> float:
    """Calls of ``fn`` per second over ``items``."""
    started = time.perf_counter()
    for item in items:
        fn(item)
    return len(items) / (time.perf_counter() - started)


def core_figures(items: list[str]) -> dict[str, float]:
    """Best checks per second of the core and of schwifty alone, interleaved rounds."""
    from services.payment.checks import CheckRequest

    checker = core_checker()
    logging.getLogger("services.payment").setLevel(logging.WARNING)  # as with a quiet logger
    from services.payment import ibans

    runs: dict[str, list[float]] = {"core": [], "ibans": [], "iban": [], "iban_bban": []}
    with warnings.catch_warnings():
        # schwifty warns where it cannot verify national check digits; warnings cost time
        # and the service does not trigger them, so the baseline does not pay for them either.
        warnings.simplefilter("ignore")
        for fn in (lambda s: checker.check(CheckRequest(iban=s)), IBAN,
                   lambda s: IBAN(s, validate_bban=True)):
            for s in items[:500]:  # warm caches (bank lookups, specs) for all three alike
                try:
                    fn(s)
                except ValueError:
                    pass

        def iban(s: str) -> None:
            """schwifty alone; an invalid IBAN raises, as it does."""
            try:
                IBAN(s)
            except ValueError:
                pass

        def iban_bban(s: str) -> None:
            """schwifty alone, with the national check digits."""
            try:
                IBAN(s, validate_bban=True)
            except ValueError:
                pass

        for _ in range(ROUNDS):
            runs["core"].append(rate(lambda s: checker.check(CheckRequest(iban=s)), items))
            runs["ibans"].append(rate(ibans.check, items))
            runs["iban"].append(rate(iban, items))
            runs["iban_bban"].append(rate(iban_bban, items))
    return {k: max(v) for k, v in runs.items()}


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_figures(items: list[str]) -> dict[str, float]:
    """Checks per second and latencies through one gunicorn worker."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TRACE30_SANDBOX": "1",
           "TRACE30_INTERNAL_TOKEN": TOKEN, "TRACE30_LOG_LEVEL": "INFO"}
    env.pop("TRACE30_REDIS_URL", None)
    proc = subprocess.Popen(  # noqa: S603 - a fixed argv
        [sys.executable, "-m", "gunicorn", "-c", str(ROOT / "deploy" / "gunicorn.conf.py"),
         "-b", f"127.0.0.1:{port}", "-w", "1", "--threads", "4", "services.payment.wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        started = time.monotonic()
        while True:
            try:
                requests.get(base + "/healthz", timeout=0.5)
                break
            except requests.RequestException:
                if proc.poll() is not None or time.monotonic() - started > 30:
                    raise RuntimeError("gunicorn did not start") from None
                time.sleep(0.05)
        boot_s = time.monotonic() - started
        latencies: list[float] = []
        lock = threading.Lock()
        stop_at = time.monotonic() + HTTP_SECONDS

        def client(offset: int) -> None:
            """One keep-alive client posting IBANs of the batch until the time is up."""
            session = requests.Session()
            headers = {"Authorization": f"Bearer {TOKEN}"}
            mine: list[float] = []
            i = offset
            while time.monotonic() < stop_at:
                t = time.perf_counter()
                body = {"iban": items[i % len(items)]}
                resp = session.post(base + "/v1/payment/check", json=body, headers=headers,
                                    timeout=10)
                mine.append(time.perf_counter() - t)
                resp.raise_for_status()
                i += HTTP_CLIENTS
            with lock:
                latencies.extend(mine)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(HTTP_CLIENTS)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        latencies.sort()
        return {
            "rps": len(latencies) / elapsed,
            "requests": len(latencies),
            "p50_ms": latencies[len(latencies) // 2] * 1000,
            "p95_ms": latencies[int(len(latencies) * 0.95)] * 1000,
            "boot_s": boot_s,
        }
    finally:
        proc.terminate()
        proc.wait(timeout=15)


def main() -> int:
    """Print every figure; exit 1 when the core is below the target ratio."""
    load_ms, banks = directory_load_ms()
    print(f"bank directory: {banks} banks loaded in {load_ms:.0f} ms "
          f"(fresh process, median of 3; paid once per worker at start-up)")
    items = batch()
    core = core_figures(items)
    ratio = core["core"] / core["iban"]
    ratio_bban = core["core"] / core["iban_bban"]
    print(f"batch: {len(items)} IBANs of {len(COUNTRIES)} countries (5% mistyped, 10% spaced)")
    print(f"schwifty IBAN(x)                     : {core['iban']:>9,.0f} checks/s")
    print(f"schwifty IBAN(x, validate_bban=True) : {core['iban_bban']:>9,.0f} checks/s")
    print(f"service IBAN checks ibans.check      : {core['ibans']:>9,.0f} checks/s")
    print(f"service core PaymentChecker.check    : {core['core']:>9,.0f} checks/s")
    print(f"ratio core / IBAN(x, validate_bban)  : {ratio_bban:.2f} (target >= {TARGET_RATIO}: "
          "the same checks)")
    print(f"ratio core / IBAN(x)                 : {ratio:.2f} (IBAN(x) skips the national "
          "check digits)")
    http = http_figures(items)
    print(f"HTTP, 1 gunicorn worker x 4 threads, {HTTP_CLIENTS} clients: "
          f"{http['rps']:,.0f} checks/s over {http['requests']} requests, "
          f"p50 {http['p50_ms']:.1f} ms, p95 {http['p95_ms']:.1f} ms "
          f"(worker ready in {http['boot_s']:.1f} s)")
    if ratio_bban < TARGET_RATIO:
        print(f"BELOW TARGET: {ratio_bban:.2f} < {TARGET_RATIO}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
