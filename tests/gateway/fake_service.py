"""A stand-in for one trace30 service in the gateway's tests: a real HTTP server on a free
loopback port that answers every POST with the status, body and content type it is told,
after ``delay_s``, and records what it got::

    with FakeService(status=503, body=b'{"status": 503}') as service:
        ...  # call service.url
        assert service.received[0].headers["Authorization"] == "Bearer t"
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Received:
    """One request as the service got it."""

    path: str
    headers: dict[str, str]
    body: bytes


class FakeService:
    """A threaded ``http.server``; a context manager that starts and stops it."""

    def __init__(self, *, status: int = 200, body: bytes = b'{"status": "valid"}',
                 content_type: str = "application/json", delay_s: float = 0.0) -> None:
        self.status = status
        self.body = body
        self.content_type = content_type
        self.delay_s = delay_s
        self.received: list[Received] = []
        self._closing = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._server.block_on_close = False
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        """The service's check URL."""
        return f"http://127.0.0.1:{self._server.server_port}/v1/vat/check"

    def __enter__(self) -> FakeService:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()  # wakes a handler that delays
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        service = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                service.received.append(Received(self.path, dict(self.headers.items()), body))
                if service.delay_s:
                    service._closing.wait(service.delay_s)
                self.send_response(service.status)
                self.send_header("Content-Type", service.content_type)
                self.send_header("Content-Length", str(len(service.body)))
                self.end_headers()
                self.wfile.write(service.body)

            def log_message(self, *args: object) -> None:
                pass

        return Handler

