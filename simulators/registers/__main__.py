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
import sys
from collections.abc import Sequence
from typing import Any

from simulators.serving import command, set_given

from . import config_from_env, create_app


def add_knobs(parser: argparse.ArgumentParser) -> None:
    """The registers simulator's own options."""
    parser.add_argument("--fail", type=int, choices=(500, 503), help="answer every request so")
    parser.add_argument("--rate-limit", type=int, help="requests per second per register")


def apply_knobs(args: argparse.Namespace, config: dict[str, Any]) -> None:
    set_given(args, config, "fail", "rate_limit")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    return command(argv, name="registers-simulator", prog="python -m simulators.registers",
                   port=8202, doc=__doc__ or "", config_from_env=config_from_env,
                   create_app=create_app, add_knobs=add_knobs, apply_knobs=apply_knobs)


if __name__ == "__main__":
    sys.exit(main())
