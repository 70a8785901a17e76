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
from shared.context import request_id as current_request_id
from shared.context import safe_request_id
from shared.errors import ConfigError
from shared.redis_client import require_url
from trace30.audit import audit
from trace30.check import Exit
from trace30.export import export
from trace30.report import report
from trace30.staff import staff


def _settings() -> dict[str, Any]:
    try:
        return load()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


def _request_id(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and safe_request_id(value) != value:
        raise click.BadParameter("a request id is 1 to 64 letters, digits, '.', '_', ':' or '-'.")
    return value


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
@click.option("--request-id", callback=_request_id,
              help="The request id the run's jobs log and send to the services (default: a "
              "new one, printed); e.g. the ticket that asked for the run.")
def reverify(tenant: str, select_all: bool, not_checked_days: int | None,
             verdicts: tuple[str, ...], input_path: Path | None, run_id: str | None, wait: bool,
             timeout_s: float | None, report_dir: Path, request_id: str | None) -> None:
    """Queue a re-verification job per trader, follow the run, report what changed."""
    from shared import tracing
    from trace30 import batch

    settings = _settings()
    tracing.configure(settings, "reverify")
    try:
        with tracing.background("trace30 reverify", request_id=request_id) as trace:
            click.echo(f"request id {current_request_id()}, trace {trace.trace_id}", err=True)
            code = batch.reverify_command(
                settings, tenant=tenant, select_all=select_all,
                not_checked_days=not_checked_days, verdicts=list(verdicts),
                input_path=input_path, run_id=run_id, wait=wait, timeout_s=timeout_s,
                report_dir=report_dir)
    except batch.BatchError as e:
        raise click.ClickException(str(e)) from e
    finally:
        tracing.shutdown()  # export the run's span
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


@main.group()
def check() -> None:
    """One-off checks from a shell, through the services' own code (no server needed).

    Exit codes: 0 valid or active, 1 invalid, inactive or not found, 2 usage or configuration
    error, 3 no verdict (the upstream was unavailable, or no source can check it)."""


def _check(kind: str, request: dict[str, Any], as_json: bool) -> None:
    import redis

    from trace30 import check as checks

    try:
        outcome = checks.run(kind, request, {"LOG_LEVEL": "WARNING"})
    except ConfigError as e:
        click.echo(f"Error: {e}", err=True)
        sys.exit(Exit.USAGE)
    except redis.RedisError as e:
        click.echo(f"Error: Redis did not answer ({type(e).__name__}): no verdict.", err=True)
        sys.exit(Exit.NO_VERDICT)
    click.echo(checks.as_json(outcome) if as_json else checks.table(outcome))
    sys.exit(outcome.exit)


_json_option = click.option("--json", "as_json", is_flag=True,
                            help="Print the service's answer as JSON instead of a table.")
_fresh_option = click.option("--fresh", is_flag=True,
                             help="Ask the register again even when an answer is cached.")


@check.command("vat")
@click.argument("vat_number")
@click.option("--requester", help="The VAT number asking (default: "
              "TRACE30_REQUESTER_VAT_NUMBER), for a VIES consultation number.")
@_fresh_option
@_json_option
def check_vat(vat_number: str, requester: str | None, fresh: bool, as_json: bool) -> None:
    """Check a VAT number (VIES; HMRC, UID or Brønnøysund for GB, CH, NO)."""
    request: dict[str, Any] = {"vat_number": vat_number}
    if requester:
        request["requester_vat_number"] = requester
    if fresh:
        request["max_age_s"] = 0
    _check("vat", request, as_json)


@check.command("registry")
@click.option("--country", help="ISO 3166 alpha-2 (optional for a LEI).")
@click.option("--number", required=True, help="The registration number.")
@click.option("--kind", help="The kind of number, where the country has several.")
@click.option("--register", help="The register court of a German number, e.g. München.")
@click.option("--name", help="The declared legal name, compared with the registered one.")
@_fresh_option
@_json_option
def check_registry(country: str | None, number: str, kind: str | None, register: str | None,
                   name: str | None, fresh: bool, as_json: bool) -> None:
    """Check a business-registration number against its register."""
    request: dict[str, Any] = {"number": number}
    for field, value in (("country_code", country), ("kind", kind), ("register", register),
                         ("name", name)):
        if value is not None:
            request[field] = value
    if fresh:
        request["max_age_s"] = 0
    _check("registry", request, as_json)


@check.command("payment")
@click.option("--iban", required=True, help="The IBAN (shown masked in the answer).")
@click.option("--bic", help="The bank's BIC, checked against the IBAN.")
@click.option("--name", help="The account holder's name; the payee's bank is then asked "
              "whether it holds the account (Verification of Payee).")
@click.option("--payee/--no-payee", "verify_payee", default=True, show_default=True,
              help="With --name: ask the payee's bank.")
@_json_option
def check_payment(iban: str, bic: str | None, name: str | None, verify_payee: bool,
                  as_json: bool) -> None:
    """Check payment account details: IBAN, BIC, SEPA and, with --name, the payee."""
    request: dict[str, Any] = {"kind": "iban", "iban": iban}
    if bic is not None:
        request["bic"] = bic
    if name is not None:
        request["account_holder"] = name
        request["verify_payee"] = verify_payee
    _check("payment", request, as_json)


main.add_command(staff)
main.add_command(export)
main.add_command(report)
main.add_command(audit)

if __name__ == "__main__":
    main()
