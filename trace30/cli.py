"""The ``trace30`` command line (click)."""

from __future__ import annotations

import sys

import click

from shared.config import load
from shared.errors import ConfigError


@click.group()
def main() -> None:
    """trace30: trader traceability checks for EU marketplaces (DSA Art. 30)."""


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port-offset", default=0, show_default=True,
              help="Shift every port (to run a second suite beside the first).")
def run(host: str, port_offset: int) -> None:
    """Start the suite (and, with TRACE30_SANDBOX=1, the simulators) under gunicorn."""
    from trace30 import suite

    try:
        settings = load()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    if not settings["SANDBOX"] and not settings["INTERNAL_TOKEN"]:
        raise click.ClickException(
            "TRACE30_INTERNAL_TOKEN is not set. Set it, or run the sandbox: "
            "TRACE30_SANDBOX=1 make run"
        )
    sys.exit(suite.run(sandbox=settings["SANDBOX"], host=host, offset=port_offset))


if __name__ == "__main__":
    main()
