"""``trace30 staff add|disable|list``: the named staff accounts of the dashboard.

Works on the evidence log directly (``TRACE30_DATABASE_URL``, ``TRACE30_EVIDENCE_SEALING_KEYS``
from the environment, as ``trace30 purge`` does), without a Flask app. The password is read
from standard input (``--password-stdin``) or typed at a prompt, never taken from the command
line, where other users and the shell history would see it.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from services.gateway import sealing
from services.gateway.evidence import EvidenceLog, StaffError
from services.gateway.evidence.schema import STAFF_ROLES
from shared.config import load
from shared.errors import ConfigError


@contextmanager
def _evidence() -> Iterator[EvidenceLog]:
    try:
        settings = load()
        keys = sealing.check_keys(settings["EVIDENCE_SEALING_KEYS"], sandbox=settings["SANDBOX"])
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    evidence = EvidenceLog(settings["DATABASE_URL"], keys)
    try:
        try:  # migrated by `trace30 migrate` (the release step), or here in sandbox
            evidence.prepare_schema(migrate=settings["MIGRATE_ON_START"], component="trace30 staff")
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
        yield evidence
    finally:
        evidence.close()


def _password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line[:-1] if line.endswith("\n") else line
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group()
def staff() -> None:
    """Named staff accounts of the dashboard (roles: viewer, reviewer, admin)."""


@staff.command()
@click.option("--tenant", default="default", show_default=True,
              help="The marketplace whose traders the account sees.")
@click.option("--username", required=True, help="Lower-case letters, digits, '.', '-', '_'.")
@click.option("--name", "display_name", required=True, help="The person's full name.")
@click.option("--role", type=click.Choice(STAFF_ROLES), default="viewer", show_default=True)
@click.option("--password-stdin", is_flag=True,
              help="Read the password from the first line of standard input (no prompt).")
def add(tenant: str, username: str, display_name: str, role: str, password_stdin: bool) -> None:
    """Create a staff account (the password is asked for, or read from stdin)."""
    password = _password(password_stdin)
    with _evidence() as evidence:
        try:
            member = evidence.add_staff(tenant=tenant, username=username,
                                        display_name=display_name, role=role,
                                        password=password)
        except StaffError as e:
            raise click.ClickException(f"{e.field}: {e.message}") from e
        others = [m.tenant for m in evidence.list_staff() if m.username == username
                  and m.tenant != tenant]
    click.echo(f"added staff:{member.username} ({member.display_name}), {member.role}, "
               f"tenant {member.tenant}")
    if others:
        click.echo(f"note: {username} also exists in tenant(s) {', '.join(others)}; they sign "
                   f"in as {username}@<tenant>.")


@staff.command()
@click.option("--tenant", default="default", show_default=True)
@click.option("--username", required=True)
def disable(tenant: str, username: str) -> None:
    """Disable a staff account: it cannot sign in, and its open sessions end."""
    with _evidence() as evidence:
        member = evidence.disable_staff(tenant=tenant, username=username)
    if member is None:
        raise click.ClickException(f"No staff member {username} in tenant {tenant}.")
    click.echo(f"disabled staff:{member.username} (tenant {member.tenant}) since "
               f"{member.disabled_at.isoformat() if member.disabled_at else '?'}")


@staff.command(name="list")
@click.option("--tenant", default=None, help="Only this tenant's accounts (default: all).")
@click.option("--json", "as_json", is_flag=True, help="One JSON array instead of a table.")
def list_(tenant: str | None, as_json: bool) -> None:
    """List the staff accounts (never their password hashes)."""
    with _evidence() as evidence:
        members = evidence.list_staff(tenant)
    if as_json:
        click.echo(json.dumps([m.as_dict() for m in members], indent=2))
        return
    if not members:
        click.echo("no staff accounts")
        return
    rows = [("TENANT", "USERNAME", "NAME", "ROLE", "STATUS")] + [
        (m.tenant, m.username, m.display_name, m.role,
         "active" if m.active else f"disabled {m.disabled_at:%Y-%m-%d}") for m in members]
    widths = [max(len(r[i]) for r in rows) for i in range(5)]
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
