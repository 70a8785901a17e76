"""``trace30 report --from DATE --to DATE [--period month|day] [--format csv|json]``: the
transparency figures of one tenant (:mod:`services.gateway.reports`), read from the evidence log
(``TRACE30_DATABASE_URL``) without a Flask app and without opening anything sealed."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import click
import sqlalchemy as sa

from services.gateway.evidence import build_engine
from services.gateway.reports import FORMATS, PERIODS, ReportError, traceability
from shared.clients import valid_tenant
from shared.config import load
from shared.errors import ConfigError


@click.command()
@click.option("--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="First day (UTC) of the report, YYYY-MM-DD.")
@click.option("--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]),
              help="Last day (UTC) of the report, included.")
@click.option("--period", type=click.Choice(PERIODS), default="month", show_default=True,
              help="One row per month or per day (and country).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True)
@click.option("--tenant", default="default", show_default=True,
              help="The tenant (marketplace) whose figures to report.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def report(start: datetime, end: datetime, period: str, fmt: str, tenant: str,
           output: Path | None) -> None:
    """Transparency figures per period and country: traders submitted, verified, sent to
    review, rejected, corrections requested, suspended, reinstated, complaints received and
    decided, median time to decision, by reason code and Art 30(1) item."""
    if not valid_tenant(tenant):
        raise click.BadParameter("not a tenant id", param_hint="--tenant")
    try:
        settings = load()
        engine = build_engine(settings["DATABASE_URL"])
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    try:
        result = traceability(engine, tenant=tenant, start=start.date(), end=end.date(),
                              period=period, today=datetime.now(UTC).date())
    except ReportError as e:
        raise click.BadParameter(str(e), param_hint=f"--{e.field}") from e
    except sa.exc.SQLAlchemyError as e:
        raise click.ClickException(
            f"The evidence log could not be read ({type(e).__name__}): is "
            "TRACE30_DATABASE_URL the gateway's, and has the gateway started once?") from e
    finally:
        engine.dispose()
    text = (json.dumps(result.as_json(), indent=2, ensure_ascii=False) + "\n"
            if fmt == "json" else result.as_csv())
    if output:
        output.write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)
