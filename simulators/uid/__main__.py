"""Run the UID register simulator with werkzeug's threaded server.

``python -m simulators.uid --host 127.0.0.1 --port 8205 [--latency-ms N]
[--fail limit|http_500|http_503|malformed] [--rate-limit-per-min N] [--quiet]``

Knobs not given on the command line come from the environment (see
:func:`simulators.uid.config_from_env`). ``--port 0`` picks a free port. Prints one line
``uid-simulator listening on http://HOST:PORT`` once it accepts connections, and stops cleanly
on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from simulators.serving import command, set_given

from . import config_from_env, create_app


def add_knobs(parser: argparse.ArgumentParser) -> None:
    """The UID register simulator's own options."""
    parser.add_argument("--fail", choices=("limit", "http_500", "http_503", "malformed"),
                        help="answer every request with this fault")
    parser.add_argument("--rate-limit-per-min", type=int,
                        help="requests a minute before Request_limit_exceeded (0: none)")


def apply_knobs(args: argparse.Namespace, config: dict[str, Any]) -> None:
    set_given(args, config, "fail", "rate_limit_per_min")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    return command(argv, name="uid-simulator", prog="python -m simulators.uid", port=8205,
                   doc=__doc__ or "", config_from_env=config_from_env, create_app=create_app,
                   add_knobs=add_knobs, apply_knobs=apply_knobs)


if __name__ == "__main__":
    sys.exit(main())
