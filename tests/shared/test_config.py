"""Settings from the environment, with sandbox defaults and refusal of unsafe configurations."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.fernet import Fernet
from flask import Flask

from shared import config
from shared.errors import ConfigError
from shared.redis_client import EXTENSION, Store
from trace30.cli import main


def test_production_endpoints_are_the_default() -> None:
    values = config.load({})
    assert values["VIES_URL"] == config.VIES_PRODUCTION_URL
    assert values["SANDBOX"] is False
    assert values["INTERNAL_TOKEN"] is None


def test_sandbox_points_at_the_simulators_and_has_a_token() -> None:
    values = config.load({"TRACE30_SANDBOX": "1"})
    assert values["VIES_URL"].startswith("http://127.0.0.1:8201/")
    assert values["INTERNAL_TOKEN"] == config.SANDBOX_INTERNAL_TOKEN


def test_environment_is_coerced_and_overrides_win() -> None:
    values = config.load({"TRACE30_VIES_DEADLINE_S": "2.5", "TRACE30_VIES_MS_CONCURRENCY": "7",
                          "TRACE30_SANDBOX": "false"}, {"VIES_MS_CONCURRENCY": 3})
    assert values["VIES_DEADLINE_S"] == 2.5
    assert values["VIES_MS_CONCURRENCY"] == 3
    assert values["SANDBOX"] is False


def test_explicit_url_beats_sandbox_default() -> None:
    values = config.load({"TRACE30_SANDBOX": "1", "TRACE30_VIES_URL": "http://x/vies"})
    assert values["VIES_URL"] == "http://x/vies"


@pytest.mark.parametrize(
    ("name", "value"),
    [("TRACE30_VIES_DEADLINE_S", "soon"), ("TRACE30_SANDBOX", "maybe"),
     ("TRACE30_VIES_MS_CONCURRENCY", "2.5")],
)
def test_bad_value_names_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        config.load({name: value})


def test_missing_token_outside_sandbox_refuses_to_start(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("TRACE30_SANDBOX", "TRACE30_INTERNAL_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with pytest.raises(ConfigError, match="TRACE30_INTERNAL_TOKEN"):
        config.init_app(Flask(__name__))


def test_parse_caps_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="must look like 'DE=2'"):
        config.parse_caps("DE:2")


# -- compound settings: parsed and checked once, when the settings are loaded ------------------


def test_compound_settings_are_read_parsed() -> None:
    values = config.load({"TRACE30_GATEWAY_PENDING_RETRY_S": "0.5, 60",
                          "TRACE30_BATCH_RETRY_S": "1,30",
                          "TRACE30_VIES_MS_CONCURRENCY_OVERRIDES": "de=2,FR=6",
                          "TRACE30_GATEWAY_API_KEYS": '[{"id": "shop", "key": "k", '
                                                      '"scopes": ["ops"], "tenant": "shop-a"}]'})
    assert values["GATEWAY_PENDING_RETRY_S"] == (0.5, 60.0)
    assert values["BATCH_RETRY_S"] == (1.0, 30.0)
    assert values["VIES_MS_CONCURRENCY_OVERRIDES"] == {"DE": 2, "FR": 6}
    [client] = values["GATEWAY_API_KEYS"]
    assert (client.id, client.scopes, client.tenant) == ("shop", frozenset({"ops"}), "shop-a")
    # the defaults are parsed as well; a value passed in already parsed is taken as it is
    defaults = config.load({})
    assert defaults["GATEWAY_PENDING_RETRY_S"] == (60.0, 300.0, 900.0, 3600.0, 21600.0)
    assert defaults["BATCH_RETRY_S"] == (10.0, 60.0, 300.0)
    assert defaults["VIES_MS_CONCURRENCY_OVERRIDES"] == {"DE": 2}
    assert defaults["GATEWAY_API_KEYS"] == ()
    assert config.load({}, {"BATCH_RETRY_S": (5.0,)})["BATCH_RETRY_S"] == (5.0,)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("GATEWAY_PENDING_RETRY_S", "60,soon", "'soon' is not a number of seconds"),
    ("GATEWAY_PENDING_RETRY_S", " , ", "at least one delay"),
    ("GATEWAY_PENDING_RETRY_S", "60,-5", "'-5' is not a delay"),
    ("GATEWAY_PENDING_RETRY_S", "nan", "'nan' is not a delay"),
    ("BATCH_RETRY_S", "10;60", "'10;60' is not a number of seconds"),
    ("BATCH_RETRY_S", ",", "at least one delay"),
    ("BATCH_RETRY_S", "-1", "'-1' is not a delay"),
    ("BATCH_RETRY_S", "inf", "'inf' is not a delay"),
    ("VIES_MS_CONCURRENCY_OVERRIDES", "DE:2", "cap 'DE:2' must look like 'DE=2'"),
    ("VIES_MS_CONCURRENCY_OVERRIDES", "DE=two", "cap 'DE=two' must look like 'DE=2'"),
    ("VIES_MS_CONCURRENCY_OVERRIDES", "GERMANY=2", "cap 'GERMANY=2' must look like"),
    ("VIES_MS_CONCURRENCY_OVERRIDES", "DE=-1", "cap 'DE=-1' must look like"),
    ("GATEWAY_API_KEYS", "{not json", "Expecting property name"),
    ("GATEWAY_API_KEYS", '{"id": "shop"}', "not a list"),
    ("GATEWAY_API_KEYS", '["shop"]', "'str' object has no attribute 'get'"),
    ("GATEWAY_API_KEYS", '[{"id": "shop", "key": "k", "scopes": ["admin"]}]',
     "unknown scopes ['admin']"),
    ("GATEWAY_API_KEYS", '[{"id": "shop"}]', "every key needs 'id' and 'key_sha256'"),
    ("GATEWAY_API_KEYS", '[{"id": "shop", "key": "k", "tenant": "Shop A"}]',
     "'tenant' must be a short id"),
])
@pytest.mark.parametrize("source", ["environment", "create_app"])
def test_a_bad_compound_setting_stops_start_up_naming_it(
        name: str, value: str, says: str, source: str) -> None:
    """From the environment, or handed to a service's ``create_app`` (which loads the settings
    the same way): the error names the variable and what is wrong with it."""
    with pytest.raises(ConfigError) as refused:
        if source == "environment":
            config.load({f"TRACE30_{name}": value})
        else:
            config.init_app(Flask(__name__), {"SANDBOX": True, name: value})
    message = str(refused.value)
    assert message.startswith(f"TRACE30_{name} is not valid: "), message
    assert says in message, message


def test_every_setting_is_documented() -> None:
    assert all(s.doc for s in config.SETTINGS.values())


def test_the_retired_retention_days_stop_start_up_naming_the_replacement() -> None:
    with pytest.raises(ConfigError, match=r"TRACE30_RETENTION_DAYS.*TRACE30_RETENTION_MONTHS"):
        config.load({"TRACE30_RETENTION_DAYS": "183"})
    assert config.load({"TRACE30_RETENTION_DAYS": ""})["RETENTION_MONTHS"] == 6
    assert config.load({"TRACE30_RETENTION_MONTHS": "12"})["RETENTION_MONTHS"] == 12


# -- a shared Redis is required outside sandbox ------------------------------------------------

SERVICES = ["services.vat", "services.registry", "services.payment", "services.gateway"]


@pytest.fixture
def no_redis_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No TRACE30_REDIS_URL and no sandbox in the environment, whatever the caller's."""
    for var in ("TRACE30_SANDBOX", "TRACE30_REDIS_URL"):
        monkeypatch.delenv(var, raising=False)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_outside_sandbox_without_redis_refuses_to_start(
        service: str, no_redis_env: None) -> None:
    """Caches, VIES concurrency caps and circuit breakers must be shared between processes:
    an embedded store per process would multiply VIES's cap by the number of workers."""
    create_app = importlib.import_module(service).create_app
    with pytest.raises(ConfigError, match="TRACE30_REDIS_URL is not set") as refused:
        create_app({"TESTING": True, "INTERNAL_TOKEN": "t" * 40})
    assert "concurrency caps" in str(refused.value) and "TRACE30_SANDBOX=1" in str(refused.value)


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_in_sandbox_without_redis_uses_the_embedded_store(
        service: str, no_redis_env: None, caplog: pytest.LogCaptureFixture,
        tmp_path: Path) -> None:
    module = importlib.import_module(service)
    app = module.create_app({"TESTING": True, "SANDBOX": True, "GATEWAY_BACKGROUND": False,
                             "DATABASE_URL": f"sqlite:///{tmp_path / 'evidence.sqlite3'}"})
    try:
        assert app.extensions[EXTENSION].embedded
        assert "embedded in-process cache" in caplog.text
    finally:
        if hasattr(module, "shutdown"):
            module.shutdown(app)


def test_a_store_passed_in_the_configuration_is_taken(no_redis_env: None, store: Store) -> None:
    from services.vat import create_app

    app = create_app({"TESTING": True, "INTERNAL_TOKEN": "t" * 40, "REDIS_STORE": store})
    assert app.extensions[EXTENSION] is store


@pytest.mark.parametrize("argv", [["run"], ["purge"], ["purge", "--dry-run"],
                                  ["reverify", "--all"], ["worker", "--burst"]])
def test_cli_commands_outside_sandbox_without_redis_refuse(
        argv: list[str], no_redis_env: None, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``run`` would start services that refuse one by one; ``purge`` would delete the SQL side
    and leave cached verdicts and batch entries in Redis past the retention period; the batch
    commands need the shared queue. Each says what to set, and does nothing."""
    database = tmp_path / "evidence.sqlite3"
    monkeypatch.setenv("TRACE30_INTERNAL_TOKEN", "t" * 40)
    monkeypatch.setenv("TRACE30_DATABASE_URL", f"sqlite:///{database}")
    monkeypatch.setenv("TRACE30_EVIDENCE_SEALING_KEYS", Fernet.generate_key().decode())
    monkeypatch.setattr("trace30.suite.run", _must_not_run)
    monkeypatch.setattr("trace30.retention.purge", _must_not_run)
    result = CliRunner().invoke(main, argv)
    assert result.exit_code == 1, result.output
    assert "TRACE30_REDIS_URL" in result.output
    assert not database.exists()


def _must_not_run(*args: object, **kwargs: object) -> int:
    raise AssertionError("started without a shared Redis")


def test_the_readme_lists_every_setting_as_shared_config_defines_it() -> None:
    """The README's configuration table is the one SETTINGS makes (``make settings-table``)."""
    from pathlib import Path

    from shared.config import SETTINGS, env_name, rewrite_readme_table, settings_table

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    assert rewrite_readme_table(readme) == readme, "run `make settings-table`"
    table = settings_table()
    assert all(f"| `{env_name(name)}` |" in table for name in SETTINGS)
