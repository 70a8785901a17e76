"""``trace30 audit verify|head``: the tamper-evident evidence log's hash chain
(:mod:`services.gateway.evidence.chain`), read from ``TRACE30_DATABASE_URL`` without a Flask app
and without opening anything sealed.

- ``verify`` walks the chain and compares every fact row with its latest entry; it prints the
  head and the counts and exits 0 when the log is intact, or the first problem (what, table,
  row id, entry) and exits 1.
- ``head`` chains what waits in the inbox (PostgreSQL), durably, then prints the current head
  ``{seq, hash, at, key_id, signature}`` as JSON, signed (Ed25519, base64) with
  ``TRACE30_DISCLOSURE_SIGNING_KEY``, for the operator to publish or timestamp daily; the
  public key is the one at ``/.well-known/trace30-disclosure-key``.
- ``adopt`` lists the fact rows no chain entry has ever named (written before migration 0010,
  when a deployment upgrades, or with plain SQL since) and, with ``--yes``, appends an entry for
  each, marked ``{"adopted": true}``: run once after the upgrade's ``trace30 migrate``, before
  the services start again, so that ``verify`` checks those rows from then on. Rows whose
  entries differ from them (edited) are never adopted.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click
import sqlalchemy as sa

from services.gateway import disclosures
from services.gateway.evidence import build_engine
from services.gateway.evidence.chain import (
    adopt,
    problems_text,
    sequence,
    signed_head,
    unchained,
    verify,
)
from services.gateway.evidence.db import _SQLITE_BEGIN
from shared.config import load
from shared.errors import ConfigError


def _engine() -> tuple[dict[str, Any], sa.Engine]:
    try:
        settings = load()
        return settings, build_engine(settings["DATABASE_URL"])
    except ConfigError as e:
        raise click.ClickException(str(e)) from e


def _unreadable(e: sa.exc.SQLAlchemyError) -> click.ClickException:
    return click.ClickException(
        f"The evidence log could not be read ({type(e).__name__}): is TRACE30_DATABASE_URL the "
        "gateway's, and has the gateway started once (migration 0010)?")


@click.group()
def audit() -> None:
    """Check the evidence log's hash chain, or print its signed head."""


@audit.command("verify")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def verify_command(fmt: str) -> None:
    """Walk the chain; name the first row edited, removed, reordered or written outside it."""
    settings, engine = _engine()
    public = None
    try:
        public = disclosures.signing_key(settings.get("DISCLOSURE_SIGNING_KEY"),
                                         sandbox=bool(settings.get("SANDBOX"))).public_key()
    except ConfigError:
        pass  # tombstone signatures are then not checked (said in the output)
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":  # one snapshot of chain and rows
                conn = conn.execution_options(isolation_level="REPEATABLE READ")
            report = verify(conn, public)
    except sa.exc.SQLAlchemyError as e:
        raise _unreadable(e) from e
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps({
            "intact": report.intact, "entries": report.entries, "rows": report.rows,
            "head": {"seq": report.head_seq, "hash": report.head_hash, "at": report.head_at},
            "signatures_checked": public is not None,
            "first_problem": report.problems[0].as_json() if report.problems else None,
            "problems": len(report.problems)}, indent=2))
    elif report.intact:
        click.echo(f"intact: {report.entries} entries, {report.rows} fact rows; head "
                   f"{report.head_seq} {report.head_hash}"
                   + ("" if public else " (tombstone signatures not checked: no signing key)"))
    else:
        click.echo(f"NOT INTACT ({len(report.problems)} problem(s)); the first: "
                   + problems_text(report.problems[:1])[0], err=True)
    sys.exit(0 if report.intact else 1)


@audit.command("head")
def head_command() -> None:
    """Print the chain's head, signed with the disclosure signing key, as JSON."""
    settings, engine = _engine()
    try:
        signer = disclosures.signing_key(settings.get("DISCLOSURE_SIGNING_KEY"),
                                         sandbox=bool(settings.get("SANDBOX")))
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                # what waits in the inbox first, durably: the head signed is never lost
                sequence(conn, durable=True)
            head = signed_head(conn, signer)
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    except sa.exc.SQLAlchemyError as e:
        raise _unreadable(e) from e
    finally:
        engine.dispose()
    click.echo(json.dumps(head, indent=2))


@audit.command("adopt")
@click.option("--yes", is_flag=True,
              help="Append the entries (without it: only list what would be adopted).")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text",
              show_default=True)
def adopt_command(yes: bool, fmt: str) -> None:
    """Take into the chain the fact rows written before it (after an upgrade): list them, and
    with --yes append an entry for each, marked as adopted."""
    _settings, engine = _engine()
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "sqlite":  # writers wait while the rows are read and chained
                conn = conn.execution_options(**{_SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():  # with --yes: what was adopted (unchained until now), by table
                counts = adopt(conn) if yes else unchained(conn)
            adopted = sum(counts.values()) if yes else 0
            if adopted and conn.dialect.name == "postgresql":
                sequence(conn, durable=True)
    except sa.exc.SQLAlchemyError as e:
        raise _unreadable(e) from e
    finally:
        engine.dispose()
    if fmt == "json":
        click.echo(json.dumps({"unchained": counts, "adopted": adopted}, indent=2))
        return
    if not counts:
        click.echo("every fact row has a chain entry: nothing to adopt")
        return
    listed = ", ".join(f"{name} {count}" for name, count in sorted(counts.items()))
    if yes:
        click.echo(f"adopted {adopted} rows ({listed}); `trace30 audit verify` checks them "
                   "from now on")
    else:
        click.echo(f"{sum(counts.values())} fact rows have no chain entry ({listed}); "
                   "`trace30 audit adopt --yes` appends one for each, marked as adopted")
