"""Run the payee-verification simulator with werkzeug's threaded server.

``python -m simulators.payee --host 127.0.0.1 --port 8203 [--latency-ms N]
[--fail http_500|http_503|bad_response] [--slow-seconds S] [--quiet]``

Knobs not given on the command line come from the environment (see
:func:`simulators.payee.config_from_env`). ``--port 0`` picks a free port. Prints one line
``payee-simulator listening on http://HOST:PORT`` once it accepts connections, and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from simulators.serving import serve

from . import config_from_env, create_app
from .state import FAIL_MODES


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(prog="python -m simulators.payee",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8203, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, help="delay of every answer")
    parser.add_argument("--fail", choices=FAIL_MODES, help="answer every request with this fault")
    parser.add_argument("--slow-seconds", type=float, help="delay of the 'slow' accounts")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the knobs: the environment's, then the command line's."""
    config = config_from_env(os.environ)
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    if args.fail is not None:
        config["fail"] = args.fail
    if args.slow_seconds is not None:
        config["slow_seconds"] = args.slow_seconds
    return config


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        app = create_app(config_from_args(args))
    except ValueError as exc:
        parser.error(str(exc))
    return serve(app, "payee-simulator", args.host, args.port, quiet=args.quiet)

if __name__ == "__main__":
    sys.exit(main())
