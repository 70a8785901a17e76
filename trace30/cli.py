"""The ``trace30`` command line (click): run the suite, re-verify traders, purge old ones,
manage staff accounts, report the transparency figures, audit the evidence chain, migrate the
evidence log (the release step)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from services.gateway.reasons import Verdict
from shared.config import load
from shared.errors import ConfigError
from shared.redis_client import require_url
from trace30.audit import audit
from trace30.export import export
from trace30.report import report
from trace30.staff import staff


def _settings() -> dict[str, Any]:
    try:
        return load()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


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

    settings = _settings()
    if not settings["SANDBOX"] and not settings["INTERNAL_TOKEN"]:
        raise click.ClickException(
            "TRACE30_INTERNAL_TOKEN is not set. Set it, or run the sandbox: "
            "TRACE30_SANDBOX=1 make run"
        )
    try:  # say it once here rather than in the log of every service that refuses to start
        require_url(settings["REDIS_URL"], sandbox=settings["SANDBOX"])
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    sys.exit(suite.run(sandbox=settings["SANDBOX"], host=host, offset=port_offset))


@main.command()
@click.option("--tenant", default="default", show_default=True,
              help="The tenant (marketplace) whose traders to re-verify; a run touches no "
              "other tenant's.")
@click.option("--all", "select_all", is_flag=True, help="Every trader of the tenant.")
@click.option("--not-checked-days", type=click.IntRange(min=0),
              help="Traders whose last check is older than this many days.")
@click.option("--verdict", "verdicts", multiple=True,
              type=click.Choice(Verdict.values()),
              help="Traders whose current verdict is this (repeatable).")
@click.option("--input", "input_path", type=click.Path(exists=True, dir_okay=False,
                                                        path_type=Path),
              help="A CSV or JSONL file of submissions to verify instead.")
@click.option("--run-id", help="Resume this run (default: derived from the selection and "
              "today's date, so running the same command again resumes).")
@click.option("--wait/--no-wait", default=True, show_default=True,
              help="Follow the run with a progress bar and write the report at the end.")
@click.option("--timeout", "timeout_s", type=float, default=None,
              help="Stop following after this many seconds (the run goes on).")
@click.option("--report-dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("var/reports"), show_default=True)
def reverify(tenant: str, select_all: bool, not_checked_days: int | None,
             verdicts: tuple[str, ...], input_path: Path | None, run_id: str | None, wait: bool,
             timeout_s: float | None, report_dir: Path) -> None:
    """Queue a re-verification job per trader, follow the run, report what changed."""
    from trace30 import batch

    settings = _settings()
    try:
        code = batch.reverify_command(
            settings, tenant=tenant, select_all=select_all, not_checked_days=not_checked_days,
            verdicts=list(verdicts), input_path=input_path, run_id=run_id, wait=wait,
            timeout_s=timeout_s, report_dir=report_dir)
    except batch.BatchError as e:
        raise click.ClickException(str(e)) from e
    sys.exit(code)


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
def worker(burst: bool) -> None:
    """Run an RQ worker for re-verification jobs (as many as you like, on any host)."""
    from trace30 import jobs

    try:
        jobs.run_worker(_settings(), burst=burst)
    except (jobs.BatchError, ConfigError) as e:  # ConfigError: e.g. a schema to migrate
        raise click.ClickException(str(e)) from e


@main.command()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("--retention-months", type=click.IntRange(min=0), default=None,
              help="Override TRACE30_RETENTION_MONTHS (calendar months).")
def purge(dry_run: bool, retention_months: int | None) -> None:
    """Delete everything about traders whose relationship ended before the retention period,
    in every tenant."""
    import redis

    from shared import logs
    from trace30 import retention

    settings = _settings()
    logs.configure("purge", settings["LOG_LEVEL"])
    months = settings["RETENTION_MONTHS"] if retention_months is None else retention_months
    try:
        # Outside sandbox the services keep cached verdicts and batch entries in Redis: a
        # purge that skipped it would leave them there past the retention period.
        require_url(settings["REDIS_URL"], sandbox=settings["SANDBOX"])
        report = retention.purge(settings, retention_months=months, dry_run=dry_run)
    except (retention.PurgeError, ConfigError) as e:
        raise click.ClickException(str(e)) from e
    except redis.RedisError as e:
        raise click.ClickException(f"Redis did not answer ({type(e).__name__}); nothing "
                                   "was deleted from SQL. Run the purge again.") from e
    click.echo(report.summary())


@main.command()
@click.option("--check", "check_only", is_flag=True,
              help="Migrate nothing; exit 1 while the schema is older than the code.")
def migrate(check_only: bool) -> None:
    """Bring the evidence log's schema up to this release (the release step, before the
    gateway and the workers start); prints the revision before and after."""
    import sqlalchemy as sa

    from shared import logs
    from trace30 import migrate as migration

    settings = _settings()
    logs.configure("migrate", settings["LOG_LEVEL"])
    try:
        if check_only:
            state = migration.check(settings)
            click.echo(f"schema revision {state.current or 'none'}, code revision "
                       f"{state.head}: {state.state}")
            sys.exit(1 if state.behind else 0)
        outcome = migration.migrate(settings)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    except sa.exc.SQLAlchemyError as e:
        raise click.ClickException(
            f"The evidence log did not answer or refused the migration ({type(e).__name__}: "
            f"{e.orig if isinstance(e, sa.exc.DBAPIError) else e}). Nothing was half-applied: "
            "run `trace30 migrate` again.") from e
    click.echo(outcome.summary())


main.add_command(staff)
main.add_command(export)
main.add_command(report)
main.add_command(audit)

if __name__ == "__main__":
    main()
