"""Settings from the environment, with sandbox defaults and refusal of unsafe configurations."""

from __future__ import annotations

import pytest
from flask import Flask

from shared import config
from shared.errors import ConfigError


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
    with pytest.raises(ConfigError):
        config.parse_caps("DE:2")


def test_every_setting_is_documented() -> None:
    assert all(s.doc for s in config.SETTINGS.values())


def test_the_retired_retention_days_stop_start_up_naming_the_replacement() -> None:
    with pytest.raises(ConfigError, match=r"TRACE30_RETENTION_DAYS.*TRACE30_RETENTION_MONTHS"):
        config.load({"TRACE30_RETENTION_DAYS": "183"})
    assert config.load({"TRACE30_RETENTION_DAYS": ""})["RETENTION_MONTHS"] == 6
    assert config.load({"TRACE30_RETENTION_MONTHS": "12"})["RETENTION_MONTHS"] == 12
