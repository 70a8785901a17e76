"""The body limit and the path check under gunicorn, as deployed (issue 9, findings 4 and 5).

The test client cannot show what a real server does with a chunked body or with bytes in a
path that are not UTF-8, so these run the VAT service as a real process and speak HTTP/1.1 to
it over a socket.
"""

from __future__ import annotations

import json
import socket
import uuid
from collections.abc import Iterator

import pytest

from tests.conftest import INTERNAL_TOKEN, REDIS_URL, Processes, gunicorn_argv

LIMIT = 64 * 1024


@pytest.fixture(scope="module")
def vat_service() -> Iterator[tuple[str, int]]:
    procs = Processes()
    base = procs.start(gunicorn_argv("services.vat.wsgi:app", workers=1, threads=2), env={
        "TRACE30_SANDBOX": "1", "TRACE30_INTERNAL_TOKEN": INTERNAL_TOKEN,
        "TRACE30_REDIS_URL": REDIS_URL,
        "TRACE30_REDIS_PREFIX": f"trace30test:inputs{uuid.uuid4().hex[:8]}:",
        "TRACE30_MAX_BODY_BYTES": str(LIMIT), "TRACE30_LOG_LEVEL": "WARNING"})
    host, port = base.removeprefix("http://").split(":")
    yield host, int(port)
    procs.stop_all()


def exchange(address: tuple[str, int], head: bytes, body: bytes = b"") -> tuple[int, dict, bytes]:
    """Send one request, return the status, headers and body of the answer."""
    with socket.create_connection(address, timeout=10) as sock:
        sock.sendall(head + body)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            assert chunk, data
            data += chunk
        raw_head, _, rest = data.partition(b"\r\n\r\n")
        lines = raw_head.decode("latin-1").split("\r\n")
        headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        while len(rest) < length:
            chunk = sock.recv(65536)
            assert chunk, rest
            rest += chunk
    return int(lines[0].split()[1]), headers, rest


def request_head(path: bytes, extra: str) -> bytes:
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            + f"Authorization: Bearer {INTERNAL_TOKEN}\r\nContent-Type: application/json\r\n"
              f"{extra}\r\n".encode())


def chunked(data: bytes, size: int = 8192) -> bytes:
    parts = [b"%x\r\n%s\r\n" % (len(data[i:i + size]), data[i:i + size])
             for i in range(0, len(data), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def test_a_declared_100_mb_body_is_refused_before_it_is_sent(vat_service) -> None:
    # Only the headers are sent: the answer comes without the server waiting for the body.
    status, headers, body = exchange(
        vat_service, request_head(b"/v1/vat/check", "Content-Length: 104857600\r\n"))
    assert status == 413
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["errors"] == {"body": [f"Larger than {LIMIT} bytes."]}


def test_a_chunked_body_over_the_limit_is_a_413(vat_service) -> None:
    payload = json.dumps({"vat_number": "DE100", "trader": {"name": "x" * (2 * LIMIT)}}).encode()
    status, headers, body = exchange(
        vat_service, request_head(b"/v1/vat/check", "Transfer-Encoding: chunked\r\n"),
        chunked(payload))
    assert status == 413, body
    assert headers["content-type"] == "application/problem+json"
    assert json.loads(body)["errors"] == {"body": [f"Larger than {LIMIT} bytes."]}


def test_a_chunked_body_under_the_limit_is_read_whole(vat_service) -> None:
    payload = json.dumps({"vat_number": "DE100", "trader": {"name": "x" * 300}}).encode()
    status, _, body = exchange(
        vat_service, request_head(b"/v1/vat/check", "Transfer-Encoding: chunked\r\n"),
        chunked(payload, 100))
    # the whole body arrived: the schema judged the name, which is over 200 characters
    assert status == 400, body
    assert json.loads(body)["errors"] == {"trader": {"name": ["Longer than maximum length "
                                                              "200."]}}


@pytest.mark.parametrize("path", [b"/v1/vat/check%00", b"/v1/vat/%ff", b"/v1/vat/%C3%28",
                                  b"/healthz?x=%ED%A0%80"])
def test_paths_that_are_not_text_are_a_400(vat_service, path: bytes) -> None:
    status, headers, body = exchange(vat_service, request_head(path, "Content-Length: 0\r\n"))
    assert status == 400, body
    assert headers["content-type"] == "application/problem+json"
    errors = json.loads(body)["errors"]
    assert list(errors) == (["x"] if b"?" in path else ["path"])
