"""Run the registers simulator with werkzeug's threaded server.

``python -m simulators.registers --host 127.0.0.1 --port 8202 [--latency-ms N]
[--fail 500|503] [--rate-limit N] [--quiet]``

Knobs not given on the command line come from the environment (see
:func:`simulators.registers.config_from_env`). ``--port 0`` picks a free port. Prints one line
``registers-simulator listening on http://HOST:PORT`` once it accepts connections, and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from simulators.serving import serve

from . import config_from_env, create_app


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.registers", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8202, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, help="delay of every answer")
    parser.add_argument("--fail", type=int, choices=(500, 503), help="answer every request so")
    parser.add_argument("--rate-limit", type=int, help="requests per second per register")
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the knobs: the environment's, then the command line's."""
    config = config_from_env(os.environ)
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    if args.fail is not None:
        config["fail"] = args.fail
    if args.rate_limit is not None:
        config["rate_limit"] = args.rate_limit
    return config


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        app = create_app(config_from_args(args))
    except ValueError as exc:
        parser.error(str(exc))
    return serve(app, "registers-simulator", args.host, args.port, quiet=args.quiet)

if __name__ == "__main__":
    sys.exit(main())
