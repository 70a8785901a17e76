"""What the VAT service costs on top of VIES, measured against baselines in the same run.

(1) Latency: with the VIES simulator at a fixed latency, the median of a check through the VAT
    service (HTTP, auth, validation, limiter, breaker, zeep; cache bypassed with max_age_s=0)
    against a bare zeep call to the same simulator. Target: ratio <= 1.3.
(2) Throughput: cached checks per second through one gunicorn worker against a bare Flask JSON
    endpoint under the same gunicorn settings. Target: ratio >= 0.6.

Run: ``make bench`` or ``.venv/bin/python bench/vat_overhead.py``. Uses Redis on
127.0.0.1:6379 when it answers (as in production), else the embedded store.
"""

from __future__ import annotations

import sys
import uuid

import redis
import requests
import zeep
from _harness import ROOT, free_port, gunicorn, median_ms, start, stop, throughput

LATENCY_MS = 100
N = 40
SECONDS = 5
TOKEN = "bench-token"
VIES_PATH = "/taxation_customs/vies/services/checkVatService"


def main() -> int:
    sim_port, vat_port, bare_port = free_port(), free_port(), free_port()
    sim = start([sys.executable, "-m", "simulators.vies", "--host", "127.0.0.1", "--port",
                 str(sim_port), "--latency-ms", str(LATENCY_MS), "--quiet"],
                f"http://127.0.0.1:{sim_port}/_sim/health")
    env = {"TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": TOKEN,
           "TRACE30_VIES_URL": f"http://127.0.0.1:{sim_port}{VIES_PATH}",
           "TRACE30_REDIS_PREFIX": f"trace30bench:{uuid.uuid4().hex[:8]}:"}
    try:
        redis.Redis(socket_timeout=0.5).ping()
        env["TRACE30_REDIS_URL"] = "redis://127.0.0.1:6379/0"
        store = "redis"
    except redis.RedisError:
        store = "embedded"
    vat = start(gunicorn("services.vat.wsgi:app", vat_port), f"http://127.0.0.1:{vat_port}/healthz",
                env)
    bare = start(gunicorn("bare_app:app", bare_port), f"http://127.0.0.1:{bare_port}/json", env)
    try:
        client = zeep.Client(str(ROOT / "services/vat/wsdl/checkVatService.wsdl"))
        service = client.create_service(
            "{urn:ec.europa.eu:taxud:vies:services:checkVat}checkVatBinding",
            f"http://127.0.0.1:{sim_port}{VIES_PATH}")
        bare_ms = median_ms(lambda: service.checkVat(countryCode="DE", vatNumber="100"), N)

        session = requests.Session()
        headers = {"Authorization": f"Bearer {TOKEN}"}
        url = f"http://127.0.0.1:{vat_port}/v1/vat/check"

        def through_service() -> None:
            r = session.post(url, json={"vat_number": "DE100", "max_age_s": 0}, headers=headers)
            assert r.json()["status"] == "valid", r.text

        service_ms = median_ms(through_service, N)
        print(f"VIES simulator latency {LATENCY_MS} ms, {N} sequential checks, store={store}")
        print(f"  bare zeep call        median {bare_ms:7.1f} ms")
        print(f"  through VAT service   median {service_ms:7.1f} ms")
        print(f"  ratio service/bare    {service_ms / bare_ms:.3f}   (target <= 1.3)")

        session.post(url, json={"vat_number": "DE100"}, headers=headers)  # fill the cache
        body = {"vat_number": "DE100"}
        bare_rps = throughput(bare_port, "/json", body, {}, SECONDS)
        vat_rps = throughput(vat_port, "/v1/vat/check", body, headers, SECONDS)
        print(f"cached checks, 1 gunicorn worker (gthread, 4 threads), 8 keep-alive clients, "
              f"{SECONDS} s each")
        print(f"  bare Flask JSON       {bare_rps:8.0f} req/s")
        print(f"  VAT service (cached)  {vat_rps:8.0f} req/s")
        print(f"  ratio service/bare    {vat_rps / bare_rps:.3f}   (target >= 0.6)")
    finally:
        stop(vat, bare, sim)
        if store == "redis":
            r = redis.Redis()
            keys = list(r.scan_iter(match=env["TRACE30_REDIS_PREFIX"] + "*"))
            if keys:
                r.delete(*keys)
    return 0


if __name__ == "__main__":
    sys.exit(main())
