"""The gateway behind the project's nginx (deploy/nginx/gateway.conf.template), both for real.

The gateway runs as compose runs it: gunicorn with ``deploy/gunicorn.conf.py``, gthread, 2
workers x 4 threads, sandbox settings. nginx runs the project's template, rendered with this
test's ports into a temporary prefix with a main file like the nginx image's. The finding: a few
clients that open connections and send nothing, or half a request, hold every gunicorn thread.
Through nginx the gateway still answers at once; straight to gunicorn it does not (the contrast
that shows the idle connections are real).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import REDIS_URL, ROOT, Processes, free_port, gunicorn_argv

pytestmark = pytest.mark.slow  # the real nginx in front of gunicorn

TEMPLATE = ROOT / "deploy" / "nginx" / "gateway.conf.template"
IDLE_CONNECTIONS = 50

#: The http {} block of the official nginx image's /etc/nginx/nginx.conf, around the project's
#: template (which it includes from conf.d), with every path in the test's own directory.
MAIN_CONF = """\
daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/error.log info;
events {{ worker_connections 1024; }}
http {{
    default_type application/octet-stream;
    access_log {dir}/access.log;
    sendfile on;
    keepalive_timeout 65;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    include {dir}/conf.d/*.conf;
}}
"""


def nginx_binary() -> str:
    """nginx, installed by ``make nginx`` (``make test`` runs it): Debian puts it in /usr/sbin."""
    path = shutil.which("nginx", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin",
                                                       "/usr/local/sbin", "/sbin"]))
    if path is None:
        pytest.fail("nginx is not installed: run `make nginx` (Debian package nginx)")
    return path


def render(template: str, **values: str) -> str:
    """What the nginx image's envsubst does with the defined variables: ``${NAME}`` replaced.
    A ``${NAME}`` the template uses but compose does not define is an error here."""
    def one(match: re.Match[str]) -> str:
        assert match[1] in values, f"the template uses ${{{match[1]}}}, which nobody sets"
        return values[match[1]]
    return re.sub(r"\$\{(\w+)\}", one, template)


def start_nginx(procs: Processes, tmp: Path, upstream: str) -> str:
    """nginx with the project's template in the prefix ``tmp``, proxying to ``upstream``
    (host:port); its base URL. The configuration must pass ``nginx -t`` first."""
    port = free_port()
    (tmp / "conf.d").mkdir()
    (tmp / "conf.d" / "gateway.conf").write_text(render(
        TEMPLATE.read_text(), NGINX_PORT=f"127.0.0.1:{port}", GATEWAY_UPSTREAM=upstream))
    (tmp / "nginx.conf").write_text(MAIN_CONF.format(dir=tmp))
    argv = [nginx_binary(), "-p", str(tmp), "-c", str(tmp / "nginx.conf"),
            "-e", str(tmp / "error.log")]
    check = subprocess.run([*argv, "-t"], capture_output=True, text=True, check=False)
    assert check.returncode == 0, check.stderr
    return procs.start(argv, port=port)


@dataclass
class Edge:
    nginx: str     # base URL of nginx
    gunicorn: str  # base URL of the gateway's gunicorn, straight
    dir: Path      # nginx's prefix: error.log, access.log


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    tmp = tmp_path_factory.mktemp("edge")
    prefix = f"trace30test:edge{uuid.uuid4().hex[:8]}:"
    procs = Processes()
    try:
        gunicorn = procs.start(
            gunicorn_argv("services.gateway.wsgi:app", workers=2, threads=4),
            env={"TRACE30_SANDBOX": "1", "TRACE30_REDIS_URL": REDIS_URL,
                 "TRACE30_REDIS_PREFIX": prefix, "TRACE30_LOG_LEVEL": "WARNING",
                 "TRACE30_DATABASE_URL": f"sqlite:///{tmp}/evidence.sqlite3"})
        nginx = start_nginx(procs, tmp, upstream=gunicorn.removeprefix("http://"))
        yield Edge(nginx, gunicorn, tmp)
    finally:
        procs.stop_all()
        client = redis.Redis.from_url(REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)
        client.close()


@contextmanager
def idle_connections(base: str, count: int = IDLE_CONNECTIONS) -> Iterator[list[socket.socket]]:
    """``count`` connections that stall: half send nothing, half half a request (slowloris).

    They are opened a few milliseconds apart, as clients arrive: both gunicorn workers then
    race for each one, where a burst would mostly go to whichever worker is awake.
    """
    host, port = base.removeprefix("http://").split(":")
    socks: list[socket.socket] = []
    try:
        for i in range(count):
            s = socket.create_connection((host, int(port)), timeout=5)
            if i % 2:
                s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
            socks.append(s)
            time.sleep(0.02)
        yield socks
    finally:
        for s in socks:
            s.close()


def test_idle_clients_do_not_block_the_gateway_behind_nginx(edge: Edge) -> None:
    # Through nginx: answered, each time, with 50 stalled clients holding their connections.
    with idle_connections(edge.nginx):
        for _ in range(5):
            started = time.monotonic()
            resp = requests.get(edge.nginx + "/healthz", timeout=10)
            assert resp.status_code == 200
            assert resp.json()["service"] == "gateway"
            assert time.monotonic() - started < 5  # a healthz takes milliseconds
        # ...and a real verification's path (auth, JSON, problem) too.
        resp = requests.post(edge.nginx + "/v1/verifications", json={}, timeout=10)
        assert resp.status_code == 401
    # The contrast: the same stalled clients straight to gunicorn starve its 8 threads, and a
    # probe that nginx answered at once gets nothing within seconds (it would wait ~30 s).
    with idle_connections(edge.gunicorn), pytest.raises(requests.exceptions.Timeout):
        requests.get(edge.gunicorn + "/healthz", timeout=3)


def test_nginx_forwards_what_the_gateway_needs(edge: Edge) -> None:
    """The request id passes through (or nginx makes one), the client's Host reaches the
    gateway, whose redirect stays relative, and nginx's own refusals are problems."""
    resp = requests.get(edge.nginx + "/healthz", headers={"X-Request-ID": "edge-test-1"},
                        timeout=10)
    assert resp.headers["X-Request-ID"] == "edge-test-1"
    made = requests.get(edge.nginx + "/healthz", timeout=10).headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)  # nginx's $request_id, kept by the gateway
    unsafe = requests.get(edge.nginx + "/healthz", headers={"X-Request-ID": 'a"b'}, timeout=10)
    assert re.fullmatch(r"[0-9a-f]{32}", unsafe.headers["X-Request-ID"])

    resp = requests.get(edge.nginx + "/ops", headers={"Host": "evil.example"},
                        allow_redirects=False, timeout=10)
    assert resp.status_code == 308
    assert resp.headers["Location"] == "/ops/"

    resp = requests.post(edge.nginx + "/v1/verifications", data=b"x" * (1024 * 1024 + 1),
                         headers={"Content-Type": "application/json"}, timeout=10)
    assert resp.status_code == 413
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.json()["status"] == 413
    assert "nginx" not in resp.text


def test_gateway_down_is_a_problem_not_nginx_html(processes: Processes, tmp_path: Path) -> None:
    """When nothing answers behind it, nginx says so in the suite's format, with Retry-After."""
    upstream = f"127.0.0.1:{free_port()}"  # nobody listens there
    nginx = start_nginx(processes, tmp_path, upstream)
    resp = requests.post(nginx + "/v1/verifications", json={}, timeout=10)
    assert resp.status_code == 503
    assert resp.headers["Content-Type"].startswith("application/problem+json")
    assert resp.headers["Retry-After"] == "5"
    body = resp.json()
    assert body["status"] == 503
    assert body["request_id"] == resp.headers["X-Request-ID"]


def directives(text: str, block: str) -> dict[str, list[str]]:
    """The directives of the first ``block {`` of an nginx file (nested blocks included)."""
    start = text.index(block + " {")
    depth, end = 0, start
    for end in range(start, len(text)):
        depth += {"{": 1, "}": -1}.get(text[end], 0)
        if depth == 0 and text[end] == "}":
            break
    found: dict[str, list[str]] = {}
    for line in text[start:end].splitlines():
        match = re.match(r"\s*([a-z_]+)\s+([^;{]*);", line.split("#")[0])
        if match:
            found.setdefault(match[1], []).append(match[2].strip())
    return found


def seconds(value: str) -> float:
    number, unit = re.fullmatch(r"(\d+)(ms|s|m)?", value).groups()  # type: ignore[union-attr]
    return int(number) * {"ms": 0.001, "s": 1, "m": 60, None: 1}[unit]


def test_nginx_limits_fit_the_gateway() -> None:
    """The proxy's timeouts and limits against the settings they must cover."""
    import runpy

    from shared.config import SETTINGS

    text = TEMPLATE.read_text()
    server, upstream = directives(text, "server"), directives(text, "upstream trace30_gateway")
    longest = SETTINGS["GATEWAY_MAX_WAIT_S"].default + SETTINGS["GATEWAY_DEADLINE_S"].default
    assert seconds(server["proxy_read_timeout"][0]) > longest
    for slow_client in ("client_header_timeout", "client_body_timeout", "send_timeout",
                        "keepalive_timeout"):
        assert 0 < seconds(server[slow_client][0]) <= 30, slow_client
    gunicorn = runpy.run_path(str(ROOT / "deploy" / "gunicorn.conf.py"))
    assert gunicorn["worker_class"] == "gthread"
    assert seconds(upstream["keepalive_timeout"][0]) < gunicorn["keepalive"]
    # 1 MiB (TRACE30_MAX_BODY_BYTES) everywhere; only the document upload routes take the
    # file (TRACE30_GATEWAY_DOCUMENT_MAX_BYTES) plus its form
    assert server["client_max_body_size"][0] == "1m"
    uploads = directives(text, "location ~ ^/(v1|ops)/traders/[^/]+/documents$")
    assert uploads["client_max_body_size"] == ["11m"]
    assert SETTINGS["GATEWAY_DOCUMENT_MAX_BYTES"].default + 64 * 1024 <= 11 * 1024 * 1024
    assert server["client_max_body_size"] == ["1m", "11m"]  # nothing else raises it
    assert server["proxy_request_buffering"] == server["proxy_buffering"] == ["on"]
    headers = {h.split()[0].lower(): h.split(maxsplit=1)[1] for h in server["proxy_set_header"]}
    assert {"host", "x-forwarded-for", "x-forwarded-proto", "x-request-id"} <= set(headers)
    assert server["proxy_redirect"] == ["off"] and server["absolute_redirect"] == ["off"]
