"""``trace30 migrate`` is the release step; the gateway and the workers only check the schema.

On SQLite and PostgreSQL (``database_url``): the command brings an empty or an older evidence log
to the code's revision and says from which to which; ``--check`` exits 1 while the schema is
behind. Outside sandbox a gateway or a batch worker refuses to start on a schema older than the
code, naming the command to run; a newer schema (a release rolled back after its migration)
starts with a warning. In sandbox, or with ``TRACE30_MIGRATE_ON_START=1``, they migrate.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from alembic import command
from click.testing import CliRunner

from services.gateway import create_app, shutdown
from services.gateway.evidence import EvidenceLog
from services.gateway.evidence.db import SchemaBehind
from shared.config import load
from shared.redis_client import Store
from tests.conftest import INTERNAL_TOKEN, REDIS_URL
from tests.gateway.conftest import api_keys
from tests.gateway.evidence_fixtures import SEALING_KEYS
from trace30 import jobs
from trace30.cli import main as cli


@pytest.fixture
def log(database_url: str) -> Iterator[EvidenceLog]:
    """An evidence log on this test's empty database (not migrated)."""
    evidence = EvidenceLog(database_url, SEALING_KEYS)
    yield evidence
    evidence.close()


def head(log: EvidenceLog) -> str:
    return log.schema_state().head


def previous(log: EvidenceLog) -> str:
    """The revision before the code's newest one."""
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(log.alembic_config())
    down = script.get_revision(head(log)).down_revision
    assert isinstance(down, str)
    return down


def upgrade_to(log: EvidenceLog, revision: str) -> None:
    """The schema as an older release left it."""
    with log.engine.begin() as conn:
        command.upgrade(log.alembic_config(conn), revision)


def set_revision(log: EvidenceLog, revision: str) -> None:
    """The schema as a newer release, unknown to this code, would have left it."""
    with log.engine.begin() as conn:
        conn.execute(sa.text("UPDATE alembic_version SET version_num = :r"), {"r": revision})


def env(database_url: str, **more: str) -> dict[str, str]:
    return {"TRACE30_SANDBOX": "0", "TRACE30_DATABASE_URL": database_url,
            "TRACE30_EVIDENCE_SEALING_KEYS": SEALING_KEYS, **more}


def test_migrate_brings_an_empty_log_to_the_code_and_check_says_when_it_is_behind(
        log: EvidenceLog, database_url: str) -> None:
    runner = CliRunner()
    checked = runner.invoke(cli, ["migrate", "--check"], env=env(database_url))
    assert checked.exit_code == 1
    assert f"schema revision none, code revision {head(log)}: behind" in checked.output
    assert log.schema_state().current is None  # --check changed nothing

    done = runner.invoke(cli, ["migrate"], env=env(database_url))
    assert done.exit_code == 0, done.output
    assert f"Migrated the evidence log's schema from revision none to {head(log)}." in done.output
    assert log.schema_state().state == "current"

    again = runner.invoke(cli, ["migrate"], env=env(database_url))
    assert again.exit_code == 0
    assert f"The evidence log's schema is current: revision {head(log)}." in again.output
    checked = runner.invoke(cli, ["migrate", "--check"], env=env(database_url))
    assert checked.exit_code == 0
    assert checked.output.strip().endswith(": current")


def test_migrate_upgrades_an_older_release_and_keeps_its_rows(
        log: EvidenceLog, database_url: str) -> None:
    old = previous(log)
    upgrade_to(log, old)
    with log.engine.begin() as conn:
        conn.execute(sa.text("INSERT INTO traders (tenant_id, trader_id, updated_at) "
                             "VALUES ('default', 'trader-1', CURRENT_TIMESTAMP)"))
    assert log.schema_state().state == "behind"
    done = CliRunner().invoke(cli, ["migrate"], env=env(database_url))
    assert done.exit_code == 0, done.output
    assert f"from revision {old} to {head(log)}" in done.output
    with log.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT trader_id FROM traders")).scalar_one() == "trader-1"


def test_migrate_leaves_a_newer_schema_alone(log: EvidenceLog, database_url: str) -> None:
    log.migrate()
    set_revision(log, "9999_from_the_future")
    done = CliRunner().invoke(cli, ["migrate"], env=env(database_url))
    assert done.exit_code == 0, done.output
    assert "at 9999_from_the_future, newer than this release's" in done.output
    checked = CliRunner().invoke(cli, ["migrate", "--check"], env=env(database_url))
    assert checked.exit_code == 0 and checked.output.strip().endswith(": ahead")


def test_migrate_names_what_is_missing_without_a_traceback(tmp_path) -> None:
    result = CliRunner().invoke(cli, ["migrate"], env={
        "TRACE30_SANDBOX": "0", "TRACE30_DATABASE_URL": f"sqlite:///{tmp_path}/e.sqlite3",
        "TRACE30_EVIDENCE_SEALING_KEYS": ""})
    assert result.exit_code == 1
    assert "TRACE30_EVIDENCE_SEALING_KEYS is not set" in result.output
    assert "Traceback" not in result.output
    # a database that does not answer: a message, not a stack trace
    result = CliRunner().invoke(cli, ["migrate"], env=env(
        "postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1"))
    assert result.exit_code == 1
    assert "The evidence log did not answer or refused the migration" in result.output
    assert "Traceback" not in result.output


def test_the_setting_is_on_in_sandbox_and_off_outside() -> None:
    assert load({}, {"SANDBOX": True})["MIGRATE_ON_START"] is True
    assert load({}, {"SANDBOX": False})["MIGRATE_ON_START"] is False
    assert load({"TRACE30_MIGRATE_ON_START": "1"}, {"SANDBOX": False})["MIGRATE_ON_START"] is True


@pytest.fixture
def production(gateway_config: dict, database_url: str) -> dict:
    """A gateway's settings outside sandbox, without the tests' migrate-on-start override."""
    config = {**gateway_config, "SANDBOX": False, "DATABASE_URL": database_url,
              "EVIDENCE_SEALING_KEYS": SEALING_KEYS, "GATEWAY_SESSION_SECRET": "s" * 40}
    del config["MIGRATE_ON_START"]
    return config


def test_outside_sandbox_the_gateway_refuses_an_older_schema_naming_the_command(
        log: EvidenceLog, production: dict) -> None:
    with pytest.raises(SchemaBehind) as refused:  # never migrated
        create_app(production)
    assert "Run `trace30 migrate`" in str(refused.value)
    assert f"no schema at all; the code needs revision {head(log)}" in str(refused.value)
    assert log.schema_state().current is None  # it did not migrate

    old = previous(log)
    upgrade_to(log, old)
    with pytest.raises(SchemaBehind, match=f"revision {old}; the code needs revision"):
        create_app(production)
    assert log.schema_state().current == old

    log.migrate()  # the release step ran: it starts
    app = create_app(production)
    try:
        assert app.test_client().get("/readyz").status_code == 200
    finally:
        shutdown(app)


def test_a_newer_schema_starts_the_gateway_with_a_warning(
        log: EvidenceLog, production: dict, caplog: pytest.LogCaptureFixture) -> None:
    log.migrate()
    set_revision(log, "9999_from_the_future")
    with caplog.at_level(logging.WARNING, logger="services.gateway.evidence"):
        app = create_app(production)
    try:
        (warning,) = [r for r in caplog.records if "newer than this gateway" in r.getMessage()]
        assert "9999_from_the_future" in warning.getMessage()
        assert app.test_client().get("/healthz").status_code == 200
    finally:
        shutdown(app)


def test_migrate_on_start_migrates_outside_sandbox_too(log: EvidenceLog, production: dict) -> None:
    app = create_app({**production, "MIGRATE_ON_START": True})
    try:
        assert log.schema_state().state == "current"
    finally:
        shutdown(app)


def test_the_sandbox_gateway_migrates_at_start_up(log: EvidenceLog, gateway_config: dict,
                                                 database_url: str) -> None:
    config = {**gateway_config, "DATABASE_URL": database_url}
    del config["MIGRATE_ON_START"]  # the sandbox default
    app = create_app(config)
    try:
        assert log.schema_state().state == "current"
    finally:
        shutdown(app)


def worker_settings(database_url: str, store: Store, **more: object) -> dict:
    return load({}, {"SANDBOX": False, "INTERNAL_TOKEN": INTERNAL_TOKEN,
                     "REDIS_URL": REDIS_URL, "REDIS_PREFIX": store.prefix,
                     "REDIS_STORE": store, "DATABASE_URL": database_url,
                     "EVIDENCE_SEALING_KEYS": SEALING_KEYS,
                     "GATEWAY_SESSION_SECRET": "s" * 40, "GATEWAY_API_KEYS": api_keys(),
                     **more})


def test_outside_sandbox_a_batch_worker_refuses_an_older_schema(
        log: EvidenceLog, database_url: str, store: Store,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SchemaBehind, match="older than this batch worker"):
        jobs.Gateway.build(worker_settings(database_url, store))
    assert log.schema_state().current is None
    # `trace30 worker` says so in one line and exits, before it takes a job
    monkeypatch.setattr(jobs, "_GATEWAY", None)
    result = CliRunner().invoke(cli, ["worker", "--burst"], env=env(
        database_url, TRACE30_INTERNAL_TOKEN=INTERNAL_TOKEN, TRACE30_REDIS_URL=REDIS_URL,
        TRACE30_REDIS_PREFIX=store.prefix, TRACE30_GATEWAY_SESSION_SECRET="s" * 40,
        TRACE30_GATEWAY_API_KEYS=api_keys()))
    assert result.exit_code == 1
    assert "Error: The evidence log's schema is older than this batch worker" in result.output
    assert "Run `trace30 migrate`" in result.output
    assert "Traceback" not in result.output

    log.migrate()
    gateway = jobs.Gateway.build(worker_settings(database_url, store))
    try:
        assert gateway.verifier.evidence.current("trader-1", tenant="default") is None
    finally:
        gateway.verifier.close()
        gateway.sender.close()
        gateway.verifier.evidence.close()


@pytest.mark.slow
def test_under_gunicorn_the_gateway_exits_naming_the_command(
        log: EvidenceLog, database_url: str, store: Store, tmp_path) -> None:
    """The real server: the worker fails to boot, gunicorn stops (exit 3, its "failed to boot")
    rather than restarting it in a loop, and the log says what to run."""
    import os
    import subprocess
    import sys

    from tests.conftest import ROOT, free_port, gunicorn_argv

    argv = [a.format(python=sys.executable, port=free_port())
            for a in gunicorn_argv("services.gateway.wsgi:app")]
    environ = {**os.environ, **env(
        database_url, TRACE30_INTERNAL_TOKEN=INTERNAL_TOKEN, TRACE30_REDIS_URL=REDIS_URL,
        TRACE30_REDIS_PREFIX=store.prefix, TRACE30_GATEWAY_SESSION_SECRET="s" * 40,
        TRACE30_GATEWAY_API_KEYS=api_keys(), TRACE30_GATEWAY_BACKGROUND="0")}
    environ.pop("TRACE30_MIGRATE_ON_START", None)
    done = subprocess.run(argv, cwd=ROOT, env=environ, capture_output=True, text=True,
                          timeout=60, check=False)
    assert done.returncode == 3, done.stderr
    assert "Worker failed to boot" in done.stderr
    last = [line for line in done.stderr.splitlines() if "SchemaBehind" in line][-1]
    assert "Run `trace30 migrate`" in last
    assert log.schema_state().current is None
