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
import sys
from collections.abc import Sequence
from typing import Any

from simulators.serving import command, set_given

from . import config_from_env, create_app, parse_ms_limits


def add_knobs(parser: argparse.ArgumentParser) -> None:
    """The VIES simulator's own options."""
    parser.add_argument("--ms-limit", action="append", default=[], metavar="CC=N",
                        help="max concurrent requests for a member state (repeatable)")
    parser.add_argument("--global-limit", type=int, help="max concurrent requests in all")
    parser.add_argument("--fault-http-status", type=int, choices=(500, 200))
    parser.add_argument("--slow-seconds", type=float, help="delay of the number 701")
    parser.add_argument("--down", action="append", default=[], metavar="CC",
                        help="member state answering MS_UNAVAILABLE (repeatable)")


def apply_knobs(args: argparse.Namespace, config: dict[str, Any]) -> None:
    if args.ms_limit:  # added to the environment's limits, not instead of them
        limits = dict(config.get("ms_limits", {}))
        for item in args.ms_limit:
            limits.update(parse_ms_limits(item))
        config["ms_limits"] = limits
    set_given(args, config, "global_limit", "fault_http_status", "slow_seconds", "down")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    return command(argv, name="vies-simulator", prog="python -m simulators.vies", port=8201,
                   doc=__doc__ or "", config_from_env=config_from_env, create_app=create_app,
                   add_knobs=add_knobs, apply_knobs=apply_knobs)


if __name__ == "__main__":
    sys.exit(main())
