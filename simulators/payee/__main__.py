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
import sys
from collections.abc import Sequence
from typing import Any

from simulators.serving import command, set_given

from . import config_from_env, create_app
from .state import FAIL_MODES


def add_knobs(parser: argparse.ArgumentParser) -> None:
    """The payee simulator's own options."""
    parser.add_argument("--fail", choices=FAIL_MODES, help="answer every request with this fault")
    parser.add_argument("--slow-seconds", type=float, help="delay of the 'slow' accounts")


def apply_knobs(args: argparse.Namespace, config: dict[str, Any]) -> None:
    set_given(args, config, "fail", "slow_seconds")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    return command(argv, name="payee-simulator", prog="python -m simulators.payee", port=8203,
                   doc=__doc__ or "", config_from_env=config_from_env, create_app=create_app,
                   add_knobs=add_knobs, apply_knobs=apply_knobs)


if __name__ == "__main__":
    sys.exit(main())
