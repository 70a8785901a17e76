"""Serving a simulator from the command line: one threaded werkzeug server, stopped cleanly.

Every ``python -m simulators.<system>`` is :func:`command`: the options every simulator has
(``--host``, ``--port``, ``--latency-ms``, ``--quiet``) and the simulator's own knobs, over
the knobs of the environment, then :func:`serve`. That prints one line
``<name> listening on http://HOST:PORT`` once the server accepts connections (``--port 0``
picks a free port, and the line says which) and returns 0 after SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import threading
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

from flask import Flask
from werkzeug.serving import make_server


def command(argv: Sequence[str] | None, *, name: str, prog: str, port: int, doc: str,
            config_from_env: Callable[[Mapping[str, str]], dict[str, Any]],
            create_app: Callable[[dict[str, Any]], Flask],
            add_knobs: Callable[[argparse.ArgumentParser], None],
            apply_knobs: Callable[[argparse.Namespace, dict[str, Any]], None]) -> int:
    """Parse the command line, build the simulator and serve it; return the exit status.

    ``add_knobs`` adds the simulator's own options; ``apply_knobs`` writes those given into
    the config (the environment's knobs, from ``config_from_env``). A config the simulator
    refuses (``ValueError``) is a usage error, not a traceback.
    """
    parser = argparse.ArgumentParser(prog=prog, description=doc.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, help="delay of every answer")
    add_knobs(parser)
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    args = parser.parse_args(argv)
    config = config_from_env(os.environ)
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    try:
        apply_knobs(args, config)
        app = create_app(config)
    except ValueError as exc:
        parser.error(str(exc))
    return serve(app, name, args.host, args.port, quiet=args.quiet)


def set_given(args: argparse.Namespace, config: dict[str, Any], *names: str) -> None:
    """Copy the options ``names`` that were given on the command line into ``config``."""
    for option in names:
        value = getattr(args, option)
        if value is not None and value != []:
            config[option] = value


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
