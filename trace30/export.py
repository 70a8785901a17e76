"""``trace30 export``: an Art 30(6) disclosure bundle for an authority, from the command line;
``--verify`` checks one (what the authority runs); ``--hold`` / ``--release-hold`` place and
release legal holds.

Works on the evidence log directly (``TRACE30_DATABASE_URL``, ``TRACE30_EVIDENCE_SEALING_KEYS``,
``TRACE30_DISCLOSURE_SIGNING_KEY``), without a Flask app, like ``trace30 staff``. The bundle is
the one ``POST /v1/disclosures`` answers (:mod:`services.gateway.disclosures`) and is logged
the same way, under ``cli:<operating system user>`` unless ``--by`` names the person.
"""

from __future__ import annotations

import getpass
import json
from pathlib import Path
from typing import Any

import click
import marshmallow as ma

from services.gateway import disclosures, sealing
from services.gateway.documents import DocumentService, build_storage
from services.gateway.evidence import EvidenceLog
from shared.config import load
from shared.errors import ConfigError
from shared.inputs import check_text


def _check(name: str, value: str | None, max_length: int, single_line: bool = True) -> str:
    if value is None:
        raise click.UsageError(f"--{name} is required.")
    try:
        check_text(value, max_length=max_length, single_line=single_line, blank=False)
    except ma.ValidationError as e:
        raise click.BadParameter(" ".join(e.messages), param_hint=f"--{name}") from e
    return value


@click.command()
@click.option("--trader", "traders", multiple=True, help="A trader to disclose (repeatable).")
@click.option("--tenant", default="default", show_default=True, help="The traders' marketplace.")
@click.option("--authority", help="The authority the bundle is for.")
@click.option("--reference", help="The authority's reference (order, case number).")
@click.option("--legal-basis", help="The legal basis of the request.")
@click.option("--include-files", is_flag=True, help="Include the documents' files.")
@click.option("--hold", is_flag=True, help="Also place a legal hold on each trader.")
@click.option("--release-hold", is_flag=True,
              help="Only release the legal hold of each --trader (no bundle).")
@click.option("--reason", help="With --hold and no --authority: the hold's reason (only a hold "
              "is placed, no bundle).")
@click.option("--by", "by", help="Who discloses (default: cli:<your user name>).")
@click.option("--out", type=click.Path(path_type=Path),
              help="Where to write the bundle: a .zip file, or a directory (unpacked).")
@click.option("--verify", "verify_path", type=click.Path(exists=True, path_type=Path),
              help="Verify this bundle (zip or directory) instead.")
@click.option("--public-key", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="With --verify: the publisher's public key (the JWK set of "
              "/.well-known/trace30-disclosure-key, or PEM); default: the configured key's.")
def export(traders: tuple[str, ...], tenant: str, authority: str | None,
           reference: str | None, legal_basis: str | None, include_files: bool, hold: bool,
           release_hold: bool, reason: str | None, by: str | None, out: Path | None,
           verify_path: Path | None, public_key: Path | None) -> None:
    """Make a signed Art 30(6) disclosure bundle for an authority (or verify one)."""
    try:
        settings = load()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    if verify_path is not None:
        _verify(verify_path, public_key, settings)
        return
    if not traders:
        raise click.UsageError("Name at least one --trader.")
    if len(set(traders)) != len(traders):
        raise click.BadParameter("a trader is listed twice", param_hint="--trader")
    for trader in traders:
        _check("trader", trader, 255)
    actor = by or f"cli:{getpass.getuser()}"
    try:
        keys = sealing.check_keys(settings["EVIDENCE_SEALING_KEYS"], sandbox=settings["SANDBOX"])
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    evidence = EvidenceLog(settings["DATABASE_URL"], keys)
    try:
        try:  # migrated by `trace30 migrate` (the release step), or here in sandbox
            evidence.prepare_schema(migrate=settings["MIGRATE_ON_START"],
                                    component="trace30 export")
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
        unknown = [t for t in traders if not evidence.trader_known(t, tenant=tenant)]
        if unknown:
            raise click.ClickException(f"Unknown trader(s) in tenant {tenant}: "
                                       f"{', '.join(unknown)}")
        if release_hold:
            for trader in traders:
                done = evidence.release_hold(trader, tenant=tenant, by=actor)
                click.echo(f"{trader}: {'hold released' if done else 'no hold in force'}")
            return
        if hold and authority is None:  # a hold alone
            why = _check("reason", reason, 2000, single_line=False)
            for trader in traders:
                placed = evidence.place_hold(trader, tenant=tenant, reason=why, by=actor)
                click.echo(f"{trader}: legal hold in force since {placed['placed_at']}")
            return
        authority = _check("authority", authority, 255)
        reference = _check("reference", reference, 255)
        legal_basis = _check("legal-basis", legal_basis, 2000, single_line=False)
        most = settings["DISCLOSURE_MAX_TRADERS"]
        if len(traders) > most:
            raise click.BadParameter(f"at most {most} traders per disclosure",
                                     param_hint="--trader")
        if out is None:
            raise click.UsageError("--out is required: a .zip file or a directory.")
        if out.exists() and (out.is_file() or any(out.iterdir())):
            raise click.ClickException(f"{out} exists: choose a new file or an empty directory.")
        try:
            key = disclosures.signing_key(settings["DISCLOSURE_SIGNING_KEY"],
                                          sandbox=settings["SANDBOX"])
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
        bundle = disclosures.disclose(
            evidence, tenant=tenant, trader_ids=list(traders), authority=authority,
            reference=reference, legal_basis=legal_basis, actor=actor, staff_id=None, key=key,
            documents=DocumentService(evidence, build_storage(settings, evidence),
                                      max_bytes=settings["GATEWAY_DOCUMENT_MAX_BYTES"]),
            include_files=include_files, hold=hold)
    finally:
        evidence.close()
    if out.suffix == ".zip":
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(bundle.zip_bytes)
    else:
        disclosures.write_directory(bundle, out)
    click.echo(f"Disclosure {bundle.id} written to {out} (key {bundle.manifest['key_id']}; "
               f"manifest SHA-256 {bundle.manifest_sha256})"
               + ("; legal hold placed" if hold else ""))


def _verify(path: Path, public_key: Path | None, settings: dict[str, Any]) -> None:
    if public_key is not None:
        try:
            key = disclosures.public_key_of(public_key.read_text("utf-8"))
        except (ValueError, KeyError, TypeError) as e:
            raise click.BadParameter(f"not a public key ({e})", param_hint="--public-key") from e
    else:
        try:
            key = disclosures.signing_key(settings["DISCLOSURE_SIGNING_KEY"],
                                          sandbox=settings["SANDBOX"]).public_key()
        except ConfigError as e:
            raise click.ClickException(str(e)) from e
    try:
        manifest = disclosures.verify_bundle(path, key)
    except disclosures.BundleInvalid as e:
        raise click.ClickException(f"INVALID: {e}") from e
    click.echo(f"OK: disclosure {manifest['disclosure_id']} to {manifest['authority']} "
               f"({manifest['reference']}), {len(manifest['files'])} files, signed by key "
               f"{manifest['key_id']}")
    click.echo(json.dumps(manifest["files"], indent=2))
