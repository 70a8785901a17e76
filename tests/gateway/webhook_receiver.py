"""A tiny webhook receiver for tests: a real HTTP server on a free loopback port.

It records every request (headers, raw body, time) and answers 200 (or ``status`` with ``body``
and ``content_type``), or, when told to, fails the
first ``fail_first`` requests with ``fail_status``, holds the first ``hang_first`` requests for
``hang_s`` seconds before answering (to make the sender time out), or waits ``delay_s`` before
every answer (to widen races)::

    with WebhookReceiver(fail_first=2) as receiver:
        ...  # deliver to receiver.url
        assert len(receiver.received) == 3
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the receiver got it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when it arrived


class WebhookReceiver:
    """A threaded ``http.server`` recording POSTs; a context manager that starts and stops it."""

    #: The path :attr:`url` names (every path is answered alike).
    path = "/hook"

    def __init__(self, *, fail_first: int = 0, fail_status: int = 500, hang_first: int = 0,
                 hang_s: float = 5.0, delay_s: float = 0.0, status: int = 200,
                 body: bytes = b"", content_type: str | None = None) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.fail_first = fail_first
        self.fail_status = fail_status
        self.hang_first = hang_first
        self.hang_s = hang_s
        self.delay_s = delay_s
        self.received: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """Where to POST."""
        return f"http://127.0.0.1:{self._server.server_port}{self.path}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # wakes the handlers that hang
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def wait_for(self, count: int, timeout_s: float = 10) -> list[ReceivedRequest]:
        """Wait until ``count`` requests have arrived; return them (fail on timeout)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.01)
        raise AssertionError(f"{len(self.received)} requests arrived, expected {count}")

    def _record(self, request: ReceivedRequest) -> int:
        with self._lock:
            self.received.append(request)
            return len(self.received) - 1

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                index = receiver._record(ReceivedRequest(
                    self.path, dict(self.headers.items()), body, time.time()
                ))
                if index < receiver.hang_first:
                    receiver._closing.wait(receiver.hang_s)
                elif receiver.delay_s:
                    receiver._closing.wait(receiver.delay_s)
                failing = index < receiver.fail_first
                status = receiver.fail_status if failing else receiver.status
                body = b"" if failing else receiver.body
                try:
                    self.send_response(status)
                    if 300 <= status < 400:
                        self.send_header("Location", "/elsewhere")
                    if body and receiver.content_type:
                        self.send_header("Content-Type", receiver.content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except OSError:  # the sender gave up waiting and closed the connection
                    self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: pytest shows the test's own output

        return Handler
