"""Run the HMRC simulator with werkzeug's threaded server.

``python -m simulators.hmrc --host 127.0.0.1 --port 8204 [--latency-ms N] [--fail 429|500|503]
[--quiet]``

Knobs not given on the command line come from the environment (see
:func:`simulators.hmrc.config_from_env`). ``--port 0`` picks a free port. Prints one line
``hmrc-simulator listening on http://HOST:PORT`` once it accepts connections, and stops cleanly
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
    """The HMRC simulator's own options."""
    parser.add_argument("--fail", type=int, choices=(429, 500, 503),
                        help="answer every lookup with this fault")


def apply_knobs(args: argparse.Namespace, config: dict[str, Any]) -> None:
    set_given(args, config, "fail")


def main(argv: Sequence[str] | None = None) -> int:
    """Serve until SIGTERM or SIGINT; return the exit status."""
    return command(argv, name="hmrc-simulator", prog="python -m simulators.hmrc", port=8204,
                   doc=__doc__ or "", config_from_env=config_from_env, create_app=create_app,
                   add_knobs=add_knobs, apply_knobs=apply_knobs)


if __name__ == "__main__":
    sys.exit(main())
