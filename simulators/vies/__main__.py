"""Run the VIES simulator with werkzeug's threaded server.

``python -m simulators.vies --host 127.0.0.1 --port 8201 [--latency-ms N]
[--ms-limit DE=2 --ms-limit FR=5] [--global-limit N] [--fault-http-status 200]
[--slow-seconds S] [--down CC] [--quiet]``

Knobs not given on the command line come from the environment (see
:func:`simulators.vies.config_from_env`). ``--port 0`` picks a free port. Prints one line
``vies-simulator listening on http://HOST:PORT`` once it accepts connections, and stops
cleanly on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from simulators.serving import serve

from . import config_from_env, create_app, parse_ms_limits


def build_parser() -> argparse.ArgumentParser:
    """Return the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m simulators.vies", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8201, help="0 picks a free port")
    parser.add_argument("--latency-ms", type=float, help="delay of every answer")
    parser.add_argument(
        "--ms-limit",
        action="append",
        default=[],
        metavar="CC=N",
        help="max concurrent requests for a member state (repeatable)",
    )
    parser.add_argument("--global-limit", type=int, help="max concurrent requests in all")
    parser.add_argument("--fault-http-status", type=int, choices=(500, 200))
    parser.add_argument("--slow-seconds", type=float, help="delay of the number 701")
    parser.add_argument(
        "--down",
        action="append",
        default=[],
        metavar="CC",
        help="member state answering MS_UNAVAILABLE (repeatable)",
    )
    parser.add_argument("--quiet", action="store_true", help="do not log each request")
    return parser


def config_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the knobs: the environment's, then the command line's."""
    config = config_from_env(os.environ)
    if args.latency_ms is not None:
        config["latency_ms"] = args.latency_ms
    if args.ms_limit:
        limits = dict(config.get("ms_limits", {}))
        for item in args.ms_limit:
            limits.update(parse_ms_limits(item))
        config["ms_limits"] = limits
    if args.global_limit is not None:
        config["global_limit"] = args.global_limit
    if args.fault_http_status is not None:
        config["fault_http_status"] = args.fault_http_status
    if args.slow_seconds is not None:
        config["slow_seconds"] = args.slow_seconds
    if args.down:
        config["down"] = args.down
    return config


def main(argv: list[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        app = create_app(config_from_args(args))
    except ValueError as exc:
        parser.error(str(exc))
    return serve(app, "vies-simulator", args.host, args.port, quiet=args.quiet)

if __name__ == "__main__":
    sys.exit(main())
