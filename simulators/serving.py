"""Serving a simulator from the command line: one threaded werkzeug server, stopped cleanly.

Every ``python -m simulators.<system>`` ends in :func:`serve`: it prints one line
``<name> listening on http://HOST:PORT`` once the server accepts connections (``--port 0``
picks a free port, and the line says which) and returns 0 after SIGTERM or SIGINT.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from flask import Flask
from werkzeug.serving import make_server


def serve(app: Flask, name: str, host: str, port: int, *, quiet: bool = False) -> int:
    """Serve ``app`` with threads until SIGTERM or SIGINT; return the exit status."""
    if quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = make_server(host, port, app, threaded=True)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    worker = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name=name, daemon=True)
    worker.start()
    print(f"{name} listening on http://{host}:{server.server_port}", flush=True)
    stop.wait()
    server.shutdown()
    server.server_close()
    worker.join(timeout=5)
    return 0
